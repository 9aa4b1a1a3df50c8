"""The packaged example messages and golden files, and XML comparison."""

from __future__ import annotations

from importlib.resources import files

from lxml import etree


def example(name: str) -> bytes:
    """A file from ``d365sap/resources/examples``."""
    return files("d365sap.resources").joinpath("examples", name).read_bytes()


def canonical(xml: bytes | etree._Element) -> bytes:
    """C14N with whitespace-only text dropped, for comparing IDocs with the golden files."""
    root = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    root = etree.fromstring(etree.tostring(root))
    for element in root.iter():
        if len(element) and element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    return etree.tostring(root, method="c14n")
