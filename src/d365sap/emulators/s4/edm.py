"""The entity model of an OData service, read from its packaged EDMX at start-up.

API_BUSINESS_PARTNER is the default; the emulator's other services (``services``) are read the
same way from their own EDMX.

Everything the emulator knows about entity sets, keys, property types, lengths, nullability,
``sap:creatable``/``sap:updatable``/``sap:deletable`` and navigation comes from here, so the
emulator can never drift from the contract it claims to implement: replace the EDMX and the
emulator follows.

The EDMX carries no ``ReferentialConstraint`` elements, so how a navigation joins its two ends is
derived (see :func:`_join`): the source's key properties that the target also has, or else the
target's key properties that the source also has (``A_BusinessPartner.Customer`` =
``A_Customer.Customer``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

from lxml import etree

from d365sap.xmlsafe import local_name, parse_xml

EDMX_RESOURCE = "edmx/API_BUSINESS_PARTNER.edmx"
_SAP_NS = "http://www.sap.com/Protocols/SAPData"


@dataclass(frozen=True, slots=True)
class Property:
    """One scalar property of an entity type, with the facets the emulator enforces."""

    name: str
    edm_type: str
    nullable: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    creatable: bool = True
    updatable: bool = True
    label: str = ""


@dataclass(frozen=True, slots=True)
class Navigation:
    """A navigation property: where it leads, how many, and which properties join the ends."""

    name: str
    target_set: str
    to_many: bool
    links: tuple[tuple[str, str], ...]
    source_is_principal: bool


@dataclass(frozen=True, slots=True)
class EntitySet:
    """An entity set with its entity type folded in (each type has exactly one set here)."""

    name: str
    type_name: str
    qualified_type: str
    keys: tuple[str, ...]
    properties: Mapping[str, Property]
    navigations: Mapping[str, Navigation]
    creatable: bool = True
    updatable: bool = True
    deletable: bool = True
    label: str = ""

    def key_of(self, values: Mapping[str, object]) -> tuple[object, ...]:
        """The key tuple of ``values`` in key order."""
        return tuple(values.get(name) for name in self.keys)


@dataclass(frozen=True)
class Model:
    """The whole service: entity sets by name plus the EDMX bytes served as ``$metadata``."""

    namespace: str
    container: str
    entity_sets: Mapping[str, EntitySet]
    edmx: bytes = field(repr=False)

    def entity_set(self, name: str) -> EntitySet | None:
        """The entity set called ``name``, or None."""
        return self.entity_sets.get(name)

    def parents_of(self, set_name: str) -> list[tuple[EntitySet, Navigation]]:
        """Entity sets that own ``set_name`` through a to-many navigation joined on their keys.

        A row of ``set_name`` may only exist while its owner does (a sales area needs its
        customer, a tax row its sales area).
        """
        owners: list[tuple[EntitySet, Navigation]] = []
        for candidate in self.entity_sets.values():
            for nav in candidate.navigations.values():
                if nav.target_set == set_name and nav.to_many and nav.source_is_principal:
                    owners.append((candidate, nav))
        return owners


def _bool_attr(element: etree._Element, name: str) -> bool:
    return element.get(f"{{{_SAP_NS}}}{name}", "true") != "false"


def _int_attr(element: etree._Element, name: str) -> int | None:
    raw = element.get(name)
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and local_name(c) == name]


def _parse_property(element: etree._Element) -> Property:
    return Property(
        name=element.get("Name", ""),
        edm_type=element.get("Type", ""),
        nullable=element.get("Nullable", "true") != "false",
        max_length=_int_attr(element, "MaxLength"),
        precision=_int_attr(element, "Precision"),
        scale=_int_attr(element, "Scale"),
        creatable=_bool_attr(element, "creatable"),
        updatable=_bool_attr(element, "updatable"),
        label=element.get(f"{{{_SAP_NS}}}label", ""),
    )


@dataclass
class _RawType:
    name: str
    keys: tuple[str, ...]
    properties: dict[str, Property]
    navs: list[etree._Element]
    label: str


def _join(source: _RawType, target: _RawType) -> tuple[tuple[tuple[str, str], ...], bool]:
    """Join properties of a navigation and whether the source's key drives it."""
    shared = [k for k in source.keys if k in target.properties]
    if shared:
        return tuple((k, k) for k in shared), True
    reverse = [k for k in target.keys if k in source.properties]
    return tuple((k, k) for k in reverse), False


def build_model(edmx: bytes) -> Model:
    """Parse ``edmx`` (hardened parser) into a :class:`Model`."""
    root = parse_xml(edmx, what="EDMX")
    schema = next(e for e in root.iter() if isinstance(e.tag, str) and local_name(e) == "Schema")
    namespace = schema.get("Namespace", "")
    types: dict[str, _RawType] = {}
    ends: dict[tuple[str, str], str] = {}
    for element in _children(schema, "EntityType"):
        key_el = _children(element, "Key")
        keys = tuple(p.get("Name", "") for k in key_el for p in _children(k, "PropertyRef"))
        props = {p.name: p for p in map(_parse_property, _children(element, "Property"))}
        name = element.get("Name", "")
        label = element.get(f"{{{_SAP_NS}}}label", "")
        types[name] = _RawType(name, keys, props, _children(element, "NavigationProperty"), label)
    for assoc in _children(schema, "Association"):
        for end in _children(assoc, "End"):
            ends[(assoc.get("Name", ""), end.get("Role", ""))] = end.get("Multiplicity", "1")
    container = _children(schema, "EntityContainer")[0]
    set_by_type: dict[str, str] = {}
    set_elements = _children(container, "EntitySet")
    for element in set_elements:
        set_by_type[element.get("EntityType", "").rsplit(".", 1)[-1]] = element.get("Name", "")
    role_sets: dict[tuple[str, str], str] = {}
    for assoc_set in _children(container, "AssociationSet"):
        assoc_name = assoc_set.get("Association", "").rsplit(".", 1)[-1]
        for end in _children(assoc_set, "End"):
            role_sets[(assoc_name, end.get("Role", ""))] = end.get("EntitySet", "")
    type_by_set = {v: k for k, v in set_by_type.items()}
    sets: dict[str, EntitySet] = {}
    for element in set_elements:
        type_name = element.get("EntityType", "").rsplit(".", 1)[-1]
        raw = types[type_name]
        navs: dict[str, Navigation] = {}
        for nav in raw.navs:
            relation = nav.get("Relationship", "").rsplit(".", 1)[-1]
            to_role = nav.get("ToRole", "")
            target_set = role_sets.get((relation, to_role), "")
            if target_set not in type_by_set:
                continue
            links, principal = _join(raw, types[type_by_set[target_set]])
            navs[nav.get("Name", "")] = Navigation(
                name=nav.get("Name", ""),
                target_set=target_set,
                to_many=ends.get((relation, to_role), "1") == "*",
                links=links,
                source_is_principal=principal,
            )
        name = element.get("Name", "")
        sets[name] = EntitySet(
            name=name,
            type_name=type_name,
            qualified_type=f"{namespace}.{type_name}",
            keys=raw.keys,
            properties=raw.properties,
            navigations=navs,
            creatable=_bool_attr(element, "creatable"),
            updatable=_bool_attr(element, "updatable"),
            deletable=_bool_attr(element, "deletable"),
            label=raw.label,
        )
    return Model(
        namespace=namespace,
        container=container.get("Name", ""),
        entity_sets=sets,
        edmx=edmx,
    )


def packaged_edmx(resource: str = EDMX_RESOURCE) -> bytes:
    """An EDMX shipped in ``d365sap.resources`` (API_BUSINESS_PARTNER unless named)."""
    return resources.files("d365sap.resources").joinpath(resource).read_bytes()


@functools.cache
def load_model(resource: str = EDMX_RESOURCE) -> Model:
    """A packaged model, parsed once per process (the BP EDMX alone is 300 kB)."""
    return build_model(packaged_edmx(resource))
