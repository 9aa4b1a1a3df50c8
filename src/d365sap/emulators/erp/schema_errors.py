"""Turn lxml's XSD messages into the ``SEGMENT-FIELD: what is wrong`` texts an IDoc sender needs.

libxml2 words its messages for XML people (``Element 'FOO': This element is not expected.
Expected is one of ( NAME2, ... )``) and never quotes the offending value. The sender of an IDoc
needs to know the segment and field, whether a field is unknown, out of sequence or missing, and
which value is too long. The error's path leads back to the node, and the segment catalogue tells
unknown fields from misplaced ones and finds the mandatory fields that are missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from lxml import etree

if TYPE_CHECKING:
    from d365sap.emulators.erp.schema import MemberSpec, SegmentSpec

_ELEMENT_PREFIX = re.compile(r"^Element '([^']*)':\s*")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([^)]*) \)")
_ATTRIBUTE = re.compile(r"attribute '([^']*)'")
_PREFIXED_STEP = re.compile(r"[A-Za-z_][\w.-]*:([A-Za-z_][\w.-]*)")
_SHOWN = 35
"""How many characters of a rejected value are quoted back."""


class LogEntry(Protocol):
    """The parts of an lxml ``_LogEntry`` that are used here."""

    @property
    def type_name(self) -> str: ...

    @property
    def path(self) -> str | None: ...

    @property
    def message(self) -> str: ...


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1] if text.startswith("{") else text


def _label(element: etree._Element) -> str:
    """The element name as the sender wrote it: namespace-qualified ones in Clark notation."""
    return str(element.tag)


def _quote(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN].rstrip() + "…"


def _node(document: etree._Element, path: str | None) -> etree._Element | None:
    if not path:
        return None
    # libxml2 writes namespace-qualified steps with prefixes of its own (ns0:IDOC).
    path = _PREFIXED_STEP.sub(r"*[local-name()='\1']", path)
    try:
        found = document.getroottree().xpath(path)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def _expected(message: str) -> list[str]:
    match = _EXPECTED.search(message)
    return [name.strip() for name in match.group(1).split(",")] if match else []


def _kind(member: MemberSpec | None) -> str:
    return "segment" if member is not None and member.is_segment else "field"


def _missing_required(
    segment: etree._Element, spec: SegmentSpec | None, expected: list[str]
) -> list[MemberSpec]:
    """Mandatory members lxml expected at this point that the segment does not contain at all."""
    if spec is None:
        return []
    present = {_local(child.tag) for child in segment if isinstance(child.tag, str)}
    return [m for m in spec.members if m.required and m.name in expected and m.name not in present]


def _content_error(node: etree._Element, message: str, segments: Mapping[str, SegmentSpec]) -> str:
    """Unknown, misplaced, repeated or missing members of a segment."""
    expected = _expected(message)
    if "Missing child element" in message:
        segment_name = _label(node)
        missing = _missing_required(node, segments.get(segment_name), expected)
        if missing:
            return "; ".join(
                f"{segment_name}-{m.name}: mandatory {_kind(m)} is missing" for m in missing
            )
        return f"{segment_name}: incomplete, expected one of {', '.join(expected)}"
    parent = node.getparent()
    field = _label(node)
    if parent is None:
        return f"{field}: unexpected root element"
    segment_name = _label(parent)
    spec = segments.get(segment_name)
    missing = _missing_required(parent, spec, expected)
    if missing:
        return "; ".join(
            f"{segment_name}-{m.name}: mandatory {_kind(m)} is missing (found {field} instead)"
            for m in missing
        )
    member = spec.member(field) if spec is not None else None
    if member is None and spec is not None and spec.member(_local(node.tag)) is not None:
        return (
            f"{segment_name}-{_local(node.tag)}: must not be namespace-qualified"
            f" (found {field}); IDoc segments and fields have no namespace"
        )
    if member is None:
        return (
            f"{segment_name}-{field}: unknown {'segment' if node.get('SEGMENT') else 'field'},"
            f" not defined for {segment_name} in DEBMAS07"
        )
    if any(_label(sibling) == field for sibling in node.itersiblings(preceding=True)):
        limit = "once" if member.max_occurs == 1 else f"{member.max_occurs} times"
        return f"{segment_name}-{field}: {_kind(member)} may occur only {limit}"
    return (
        f"{segment_name}-{field}: {_kind(member)} out of sequence,"
        f" expected one of {', '.join(expected)} here"
    )


def describe_error(
    entry: LogEntry, document: etree._Element, segments: Mapping[str, SegmentSpec]
) -> str:
    """One sender-readable sentence for one lxml validation error."""
    node = _node(document, entry.path)
    prefix = _ELEMENT_PREFIX.match(entry.message)
    name = _label(node) if node is not None else (prefix.group(1) if prefix else "IDOC")
    detail = _ELEMENT_PREFIX.sub("", entry.message).strip()
    parent = node.getparent() if node is not None else None
    where = f"{_label(parent)}-{name}" if parent is not None else name
    spec = segments.get(_label(parent)) if parent is not None else None
    member = spec.member(name) if spec is not None else None
    value = (node.text or "") if node is not None else ""

    kind = entry.type_name
    if kind == "SCHEMAV_ELEMENT_CONTENT" and node is not None:
        return _content_error(node, entry.message, segments)
    if kind == "SCHEMAV_CVC_MAXLENGTH_VALID":
        limit = member.max_length if member is not None and member.max_length else "the allowed"
        return f"{where}: value '{_quote(value)}' is longer than {limit} characters"
    if kind == "SCHEMAV_CVC_ELT_5_2_2_2_2" and member is not None and member.fixed is not None:
        return f"{where}: value '{_quote(value)}' is not allowed, it must be '{member.fixed}'"
    if kind == "SCHEMAV_CVC_ENUMERATION_VALID" and member is not None and member.allowed:
        allowed = ", ".join(f"'{v}'" for v in member.allowed)
        return f"{where}: value '{_quote(value)}' is not allowed, expected one of {allowed}"
    if kind == "SCHEMAV_CVC_COMPLEX_TYPE_4":
        attribute = _ATTRIBUTE.search(entry.message)
        return f"{name}: attribute {attribute.group(1) if attribute else 'SEGMENT'} is missing"
    if kind in ("SCHEMAV_CVC_COMPLEX_TYPE_3_2_1", "SCHEMAV_CVC_TYPE_3_1_1"):
        attribute = _ATTRIBUTE.search(entry.message)
        target = name if name in segments else where
        return f"{target}: attribute {attribute.group(1) if attribute else '?'} is not allowed"
    if kind == "SCHEMAV_CVC_TYPE_3_1_2":
        return f"{where}: a field holds a value, not nested elements"
    if kind == "SCHEMAV_CVC_COMPLEX_TYPE_2_3":
        return f"{name}: text between fields is not allowed"
    return f"{where}: {detail}"
