"""Hardened XML parsing for everything that arrives from outside.

Every XML document d365sap reads (inbound Dynamics payloads, IDocs and SOAP envelopes reaching the
emulators, back-end replies) goes through :func:`parse_xml`: no DTDs, no entity expansion, no
network access, no huge trees. A document that tries any of that is rejected, not defused
silently, so the caller learns why.
"""

from __future__ import annotations

from lxml import etree

from d365sap.errors import ValidationError


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes | str, *, what: str = "body") -> etree._Element:
    """Parse ``data`` into an element tree, refusing DTDs and entities.

    Raises :class:`ValidationError` naming ``what`` with lxml's line/column message.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw.strip():
        raise ValidationError(what, "empty document, XML expected")
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationError(what, f"malformed XML: {exc.msg}") from exc
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise ValidationError(what, "DOCTYPE declarations are not allowed")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise ValidationError(what, "entity references are not allowed")
    return root


def local_name(element: etree._Element) -> str:
    """The tag of ``element`` without its namespace."""
    return etree.QName(element).localname
