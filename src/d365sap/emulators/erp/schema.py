"""The DEBMAS07 IDoc schema as the emulated ECC knows it.

The packaged XSD (``resources/xsd/ERP_ZZ_DEBMAS.xsd``) was generated for one extension: it names the
root element ``ZZ_DEBMAS`` and fixes ``EDI_DC40-CIMTYP`` to ``ZZ_DEBMAS``. In a real system the
extension and the XML root are partner-profile matters, not part of the segment structure, so the
emulator compiles a relaxed copy once (CIMTYP optional, free text of CIMTYP's length) and checks
CIMTYP and MESTYP against the configured partner profile itself (see :mod:`.profile`). Everything
else (segment order, field order, maximum lengths, mandatory control fields, IDOCTYP = DEBMAS07)
is enforced by the unchanged XSD.

The same walk over the XSD yields a :class:`SegmentSpec` catalogue: the field lists of KNA1 and
KNVV, the limits the seed is checked against, and the knowledge needed to turn lxml's validation
messages into ``SEGMENT-FIELD: ...`` texts (:mod:`.schema_errors`).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from lxml import etree

from d365sap.emulators.erp.schema_errors import LogEntry, describe_error

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSD_ROOT = "ZZ_DEBMAS"
BASIC_TYPE = "DEBMAS07"
CIMTYP_LENGTH = 30
"""EDIDC-CIMTYP is CHAR 30 in the IDoc control record."""

_XS = f"{{{XSD_NS}}}"


@dataclass(frozen=True)
class MemberSpec:
    """One child of a segment in the XSD: a field (simple content) or a nested segment."""

    name: str
    is_segment: bool
    min_occurs: int
    max_occurs: int | None
    max_length: int | None = None
    fixed: str | None = None
    allowed: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether the XSD demands at least one occurrence."""
        return self.min_occurs > 0


@dataclass(frozen=True)
class SegmentSpec:
    """A segment (or the IDOC / root container) with its members in XSD order."""

    name: str
    members: tuple[MemberSpec, ...]

    def member(self, name: str) -> MemberSpec | None:
        """The member called ``name``, if the segment defines one."""
        for member in self.members:
            if member.name == name:
                return member
        return None

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the simple fields, in XSD order (nested segments left out)."""
        return tuple(m.name for m in self.members if not m.is_segment)


def _occurs(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    if value == "unbounded":
        return None
    return int(value)


def _member(element: etree._Element) -> MemberSpec:
    name = str(element.get("name"))
    min_occurs = _occurs(element.get("minOccurs"), 1) or 0
    max_occurs = _occurs(element.get("maxOccurs"), 1)
    if element.find(f"{_XS}complexType") is not None:
        return MemberSpec(name, True, min_occurs, max_occurs)
    restriction = element.find(f"{_XS}simpleType/{_XS}restriction")
    max_length: int | None = None
    allowed: tuple[str, ...] = ()
    if restriction is not None:
        length = restriction.find(f"{_XS}maxLength")
        if length is not None:
            max_length = int(str(length.get("value")))
        allowed = tuple(str(e.get("value")) for e in restriction.findall(f"{_XS}enumeration"))
    return MemberSpec(
        name,
        False,
        min_occurs,
        max_occurs,
        max_length=max_length,
        fixed=element.get("fixed"),
        allowed=allowed,
    )


def _catalogue(schema_root: etree._Element) -> dict[str, SegmentSpec]:
    """Walk every element with complex content and record its members."""
    segments: dict[str, SegmentSpec] = {}
    for element in schema_root.iter(f"{_XS}element"):
        sequence = element.find(f"{_XS}complexType/{_XS}sequence")
        if sequence is None:
            continue
        members = tuple(_member(child) for child in sequence.iterchildren(f"{_XS}element"))
        segments[str(element.get("name"))] = SegmentSpec(str(element.get("name")), members)
    return segments


def _relax_extension(schema_root: etree._Element) -> etree._Element:
    """Copy of the XSD in which CIMTYP is an optional CHAR 30 instead of the fixed ``ZZ_DEBMAS``."""
    relaxed = copy.deepcopy(schema_root)
    found = relaxed.xpath(
        "//xsd:element[@name='EDI_DC40']//xsd:element[@name='CIMTYP']",
        namespaces={"xsd": XSD_NS},
    )
    if not isinstance(found, list) or len(found) != 1:
        raise RuntimeError("packaged DEBMAS07 XSD has no single EDI_DC40-CIMTYP element")
    cimtyp = cast(etree._Element, found[0])
    for attribute in ("fixed", "type"):
        if attribute in cimtyp.attrib:
            del cimtyp.attrib[attribute]
    cimtyp.set("minOccurs", "0")
    simple = etree.SubElement(cimtyp, f"{_XS}simpleType")
    restriction = etree.SubElement(simple, f"{_XS}restriction", base="xsd:string")
    etree.SubElement(restriction, f"{_XS}maxLength", value=str(CIMTYP_LENGTH))
    return relaxed


class DebmasSchema:
    """The compiled (relaxed) DEBMAS07 schema plus its segment catalogue.

    lxml validators keep their error log on the object, so validation is serialised by a lock: the
    emulator serves requests from several threads.
    """

    def __init__(self, xsd_bytes: bytes) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        relaxed = _relax_extension(etree.fromstring(xsd_bytes, parser=parser))
        self.segments: Mapping[str, SegmentSpec] = _catalogue(relaxed)
        for needed in (XSD_ROOT, "IDOC", "EDI_DC40", "E1KNA1M", "E1KNVVM", "Z1ZAKNA1"):
            if needed not in self.segments:
                raise RuntimeError(f"packaged DEBMAS07 XSD lacks segment {needed}")
        self._xsd = etree.XMLSchema(relaxed)
        self._lock = threading.Lock()

    def segment(self, name: str) -> SegmentSpec:
        """The catalogue entry of segment ``name`` (KeyError if the schema has none)."""
        return self.segments[name]

    def validate_idoc(self, idoc: etree._Element) -> list[str]:
        """Validate one ``IDOC`` element; an empty list means it is valid.

        The IDOC is copied under a fresh ``ZZ_DEBMAS`` root, so that documents with another root
        name (``DEBMAS07``, the extension name) and documents with several IDOCs are checked by the
        same schema, one IDoc at a time.
        """
        wrapper = etree.Element(XSD_ROOT)
        clone = copy.deepcopy(idoc)
        clone.tail = None
        wrapper.append(clone)
        with self._lock:
            if self._xsd.validate(wrapper):
                return []
            entries = [cast(LogEntry, e) for e in cast(Iterable[Any], self._xsd.error_log)]
        problems: list[str] = []
        for entry in entries:
            text = describe_error(entry, wrapper, self.segments)
            if text not in problems:
                problems.append(text)
        return problems


@functools.lru_cache(maxsize=1)
def load_schema() -> DebmasSchema:
    """The packaged schema, compiled once per process (it is immutable after construction)."""
    data = resources.files("d365sap.resources").joinpath("xsd", "ERP_ZZ_DEBMAS.xsd").read_bytes()
    return DebmasSchema(data)
