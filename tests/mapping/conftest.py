"""Fixtures for the mapping tests: golden files, XML edits and canonical comparison."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.resources import files

import pytest
from lxml import etree

from support.examples import canonical

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]


def read_example(name: str) -> bytes:
    return files("d365sap.resources").joinpath("examples", name).read_bytes()


def edit_xml(xml: bytes, changes: Mapping[str, str | None]) -> bytes:
    """Set (or, with None, remove) elements addressed by paths below the root.

    A path that does not exist yet is appended to its parent.
    """
    root = etree.fromstring(xml)
    for path, value in changes.items():
        found = root.find(path)
        if value is None:
            if found is not None:
                parent = found.getparent()
                assert parent is not None
                parent.remove(found)
            continue
        if found is None:
            parent_path, _, name = path.rpartition("/")
            parent = root.find(parent_path) if parent_path else root
            assert parent is not None, path
            found = etree.SubElement(parent, name)
        found.text = value
    return etree.tostring(root)


@pytest.fixture
def example() -> Callable[[str], bytes]:
    return read_example


@pytest.fixture
def c14n() -> Callable[[bytes], bytes]:
    return canonical


@pytest.fixture
def edit() -> Edit:
    return edit_xml


@pytest.fixture
def s4_xml() -> bytes:
    return read_example("in_erpaccountdetails_S4HC.xml")


@pytest.fixture
def ecc_xml() -> bytes:
    return read_example("in_erpaccountdetails_ECC.xml")


@pytest.fixture
def accounts_xml() -> bytes:
    return read_example("in_erpaccounts_ECC.xml")
