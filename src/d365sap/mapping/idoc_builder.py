"""Building DEBMAS07 IDoc XML: control record, segments in schema order, checked field lengths.

Shared by the change mapping (:mod:`d365sap.mapping.debmas`) and the create mapping
(:mod:`d365sap.mapping.debmas_create`): segments and fields come in the order of the packaged
``ERP_ZZ_DEBMAS.xsd``, with ``BEGIN="1"``/``SEGMENT="1"``, and every value is checked against the
field's XSD length before anything is sent, the error naming segment, field and source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from d365sap.config import IdocControlSettings
from d365sap.mapping.fields import check_max_length
from d365sap.mapping.schemas import debmas_segment_fields

NO_DATA = "/"
"""ALE "no data" sign: the receiving ECC leaves the field unchanged."""


@dataclass(frozen=True)
class IdocValue:
    """A field value with the source field (CRM element or Dataverse column) errors name."""

    value: str | None
    source: str


def idoc_document(control: IdocControlSettings) -> tuple[etree._Element, etree._Element]:
    """Root element, ``IDOC BEGIN="1"`` and the control record built from ``control``."""
    root = etree.Element(control.root_element)
    idoc = etree.SubElement(root, "IDOC", BEGIN="1")
    header = {
        "TABNAM": "EDI_DC40",
        "DIRECT": "2",
        "IDOCTYP": control.idoctyp,
        "CIMTYP": control.cimtyp,
        "MESTYP": control.mestyp,
        "SNDPOR": control.sndpor,
        "SNDPRT": control.sndprt,
        "SNDPRN": control.sndprn,
        "RCVPOR": control.rcvpor,
        "RCVPRT": control.rcvprt,
        "RCVPRN": control.rcvprn,
    }
    segment = etree.SubElement(idoc, "EDI_DC40", SEGMENT="1")
    for field in debmas_segment_fields("EDI_DC40"):
        if field.name in header:
            etree.SubElement(segment, field.name).text = header[field.name]
    return root, idoc


def add_segment(
    parent: etree._Element,
    name: str,
    values: Mapping[str, IdocValue],
    *,
    default: str | None,
    msgfn: str | None = None,
) -> etree._Element:
    """Append segment ``name`` with its fields in schema order.

    Mapped fields are written when they have a value (None → left out); ``MSGFN`` gets
    ``msgfn``; every other field gets ``default`` (``/``) or is left out when ``default`` is None.
    """
    segment = etree.SubElement(parent, name, SEGMENT="1")
    known = {field.name for field in debmas_segment_fields(name)}
    unknown = set(values) - known
    if unknown:
        raise LookupError(f"segment {name} has no field(s) {sorted(unknown)}")
    for field in debmas_segment_fields(name):
        mapped = values.get(field.name)
        if mapped is not None:
            if mapped.value is None:
                continue
            check_max_length(
                mapped.value, field.max_length, target=f"{name}-{field.name}", source=mapped.source
            )
            text = mapped.value
        elif field.name == "MSGFN" and msgfn is not None:
            text = msgfn
        elif default is not None:
            text = default
        else:
            continue
        etree.SubElement(segment, field.name).text = text
    return segment


def serialize_idoc(root: etree._Element) -> bytes:
    """The document as UTF-8 XML with a declaration, indented."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
