"""Received IDocs as plain data: the control record and the tree of data segments.

A document may carry several ``IDOC`` elements; each becomes one :class:`ReceivedIdoc` with its
own number. Field values keep the three states the ALE inbound distinguishes: an absent element
(not in ``fields``), the no-data sign ``/`` and an empty element (``""``, which clears the field).
Values are right-trimmed like SAP CHAR fields.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from lxml import etree

from d365sap.emulators.erp.faults import ExceptionName, IdocRejectedError

IDOC_SOAP_NS = "urn:sap-com:document:sap:idoc:soap:messages"
"""Namespace SAP's IDoc SOAP service gives the document root inside a SOAP body."""
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NO_DATA = "/"
"""The ALE no-data sign: leave the field as it is."""


@dataclass(frozen=True)
class Segment:
    """One data segment: its fields in document order and its child segments."""

    name: str
    fields: Mapping[str, str]
    children: tuple[Segment, ...]

    def children_named(self, name: str) -> list[Segment]:
        """All direct child segments called ``name``, in document order."""
        return [child for child in self.children if child.name == name]

    def child(self, name: str) -> Segment | None:
        """The first direct child segment called ``name``."""
        found = self.children_named(name)
        return found[0] if found else None


@dataclass(frozen=True)
class ReceivedIdoc:
    """One IDoc as received: control record, data segments and its own XML."""

    root_name: str
    control: Mapping[str, str]
    segments: tuple[Segment, ...]
    xml: str

    def control_value(self, name: str) -> str:
        """A control-record field, ``""`` when absent."""
        return self.control.get(name, "")

    def segment(self, name: str) -> Segment | None:
        """The first top-level data segment called ``name``."""
        for segment in self.segments:
            if segment.name == name:
                return segment
        return None

    @property
    def sender_docnum(self) -> str:
        """The sender's IDoc number (EDI_DC40-DOCNUM) as a 16-digit transfer id, or ``""``."""
        docnum = self.control_value("DOCNUM").strip()
        return docnum.zfill(16) if docnum.isdigit() else ""


def _value(element: etree._Element) -> str:
    return (element.text or "").rstrip()


def _read_segment(element: etree._Element, segment_names: Collection[str]) -> Segment:
    fields: dict[str, str] = {}
    children: list[Segment] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag in segment_names:
            children.append(_read_segment(child, segment_names))
        else:
            fields[child.tag] = _value(child)
    return Segment(str(element.tag), fields, tuple(children))


def read_idoc(
    idoc: etree._Element, *, root_name: str, segment_names: Collection[str]
) -> ReceivedIdoc:
    """Read one schema-valid ``IDOC`` element.

    ``root_name`` is the root element the sender used; the stored XML is that root around this one
    IDOC, so each IDoc can be shown and re-sent on its own.
    """
    control: dict[str, str] = {}
    segments: list[Segment] = []
    for child in idoc:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "EDI_DC40":
            control = {f.tag: _value(f) for f in child if isinstance(f.tag, str)}
        else:
            segments.append(_read_segment(child, segment_names))
    wrapper = etree.Element(root_name)
    wrapper.text = "\n  "
    clone = copy.deepcopy(idoc)
    clone.tail = "\n"
    wrapper.append(clone)
    xml = etree.tostring(wrapper, encoding="unicode")
    return ReceivedIdoc(root_name, control, tuple(segments), xml)


def idoc_elements(root: etree._Element, *, accepted_roots: Collection[str]) -> list[etree._Element]:
    """The ``IDOC`` elements of a document, after checking the envelope around them.

    The root must be named like an IDoc-XML document of this type (the basic type, the extension or
    the XSD's ``ZZ_DEBMAS``), unqualified or in SAP's IDoc SOAP namespace, and hold only IDOCs.
    """
    qname = etree.QName(root)
    if qname.namespace not in (None, IDOC_SOAP_NS) or qname.localname not in accepted_roots:
        expected = ", ".join(sorted(accepted_roots))
        raise IdocRejectedError(
            ExceptionName.TAG_ERROR,
            [f"{root.tag}: not a DEBMAS07 IDoc document, root element must be one of {expected}"],
        )
    name = qname.localname
    problems: list[str] = []
    for attribute in map(str, root.attrib):
        if etree.QName(attribute).namespace != XSI_NS:
            problems.append(f"{name}: attribute {attribute} is not allowed")
    if (root.text or "").strip():
        problems.append(f"{name}: text outside IDOC elements is not allowed")
    idocs: list[etree._Element] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if (child.tail or "").strip():
            problems.append(f"{name}: text outside IDOC elements is not allowed")
        if child.tag == "IDOC":
            idocs.append(child)
        else:
            problems.append(f"{name}-{child.tag}: unexpected element, the document holds IDOCs")
    if problems:
        raise IdocRejectedError(ExceptionName.TAG_ERROR, problems)
    if not idocs:
        raise IdocRejectedError(
            ExceptionName.NO_IDOCS_RECEIVED, [f"{name}: the document has no IDOC"]
        )
    return idocs
