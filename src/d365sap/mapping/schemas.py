"""Field limits and field order read from the packaged SAP schema files, parsed once.

The mappings take S/4 property lengths from the API_BUSINESS_PARTNER metadata and IDoc field
order and lengths from the DEBMAS schema rather than from hand-written lists, so they cannot
drift from what SAP actually enforces. Both files ship inside the package
(``d365sap.resources``); they are parsed lazily on first use and cached for the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType

from lxml import etree

from d365sap.xmlsafe import parse_xml

_RESOURCES = "d365sap.resources"
EDMX_RESOURCE = "edmx/API_BUSINESS_PARTNER.edmx"
DEBMAS_RESOURCE = "xsd/ERP_ZZ_DEBMAS.xsd"
_EDM_NAMESPACE = "http://schemas.microsoft.com/ado/2008/09/edm"
_XSD = "{http://www.w3.org/2001/XMLSchema}"


class SchemaResourceError(LookupError):
    """A packaged schema file lacks something a mapping relies on (a packaging bug)."""


@dataclass(frozen=True)
class IdocField:
    """One data field of an IDoc segment: its name and maximum length (None: unrestricted)."""

    name: str
    max_length: int | None


def _read_resource(name: str) -> etree._Element:
    data = files(_RESOURCES).joinpath(name).read_bytes()
    return parse_xml(data, what=f"resource {name}")


@lru_cache(maxsize=1)
def _edmx_lengths() -> Mapping[str, Mapping[str, int | None]]:
    root = _read_resource(EDMX_RESOURCE)
    ns = {"edm": _EDM_NAMESPACE}
    result: dict[str, Mapping[str, int | None]] = {}
    for entity in root.iterfind(".//edm:EntityType", ns):
        lengths: dict[str, int | None] = {}
        for prop in entity.iterfind("edm:Property", ns):
            raw = prop.get("MaxLength")
            lengths[str(prop.get("Name"))] = int(raw) if raw is not None else None
        result[str(entity.get("Name"))] = MappingProxyType(lengths)
    return MappingProxyType(result)


def edmx_max_lengths(entity_type: str) -> Mapping[str, int | None]:
    """Property → MaxLength of an API_BUSINESS_PARTNER entity type (``A_CustomerSalesAreaType``)."""
    try:
        return _edmx_lengths()[entity_type]
    except KeyError:
        raise SchemaResourceError(f"{EDMX_RESOURCE} has no entity type {entity_type}") from None


def _children(element: etree._Element) -> list[etree._Element]:
    """The xsd:element children of an element declaration's complexType/sequence."""
    sequence = element.find(f"{_XSD}complexType/{_XSD}sequence")
    return [] if sequence is None else list(sequence.iterfind(f"{_XSD}element"))


def _max_length(declaration: etree._Element) -> int | None:
    facet = declaration.find(f"{_XSD}simpleType/{_XSD}restriction/{_XSD}maxLength")
    return int(str(facet.get("value"))) if facet is not None else None


@lru_cache(maxsize=1)
def _debmas_segments() -> Mapping[str, tuple[IdocField, ...]]:
    root = _read_resource(DEBMAS_RESOURCE)
    result: dict[str, tuple[IdocField, ...]] = {}
    pending = list(root.iterfind(f"{_XSD}element"))
    while pending:
        declaration = pending.pop()
        children = _children(declaration)
        pending.extend(children)
        name = str(declaration.get("name"))
        fields = tuple(
            IdocField(str(child.get("name")), _max_length(child))
            for child in children
            if child.find(f"{_XSD}complexType") is None
        )
        if fields and name not in result:
            result[name] = fields
    return MappingProxyType(result)


def debmas_segment_fields(segment: str) -> tuple[IdocField, ...]:
    """The data fields of a DEBMAS segment (``EDI_DC40``, ``E1KNA1M``, ...), in schema order."""
    try:
        return _debmas_segments()[segment]
    except KeyError:
        raise SchemaResourceError(f"{DEBMAS_RESOURCE} has no segment {segment}") from None
