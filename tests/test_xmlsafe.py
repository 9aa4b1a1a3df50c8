"""The hardened XML parser refuses DTDs, entities and malformed documents, naming the field."""

from __future__ import annotations

import pytest

from d365sap.errors import ValidationError
from d365sap.xmlsafe import local_name, parse_xml
from support.hostile_xml import BILLION_LAUGHS, XXE


def test_parses_plain_documents() -> None:
    root = parse_xml(b"<a xmlns='urn:x'><b>1</b></a>")
    assert local_name(root) == "a"


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE])
def test_refuses_dtds_and_entities(document: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_xml(document)
    assert caught.value.field == "body"
    assert "DOCTYPE" in caught.value.reason or "entit" in caught.value.reason


@pytest.mark.parametrize("document", [b"", b"   ", b"<a><b></a>", b"not xml", b'{"json": 1}'])
def test_malformed_documents_name_the_field(document: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_xml(document, what="idoc")
    assert caught.value.field == "idoc"
