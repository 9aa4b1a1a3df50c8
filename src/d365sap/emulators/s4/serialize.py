"""Entities as SAP's OData v2 JSON: ``__metadata``, deferred or expanded navigation, Edm values.

URIs are absolute and built from the address the client used, so ``__metadata.uri``,
``__deferred.uri``, ``Location`` and ``__next`` work through whatever host and port the emulator
is reached on.
"""

from __future__ import annotations

from typing import Any

from d365sap.emulators.s4.edm import EntitySet, Model
from d365sap.emulators.s4.query import Shape
from d365sap.emulators.s4.store import Record, Store
from d365sap.emulators.s4.values import key_literal, to_json


class Serializer:
    """Renders records of one request (bound to its service root URL)."""

    def __init__(self, model: Model, store: Store, service_root: str) -> None:
        self.model = model
        self.store = store
        self.root = service_root if service_root.endswith("/") else service_root + "/"

    def entity_path(self, entity_set: EntitySet, values: Any) -> str:
        """``A_BusinessPartner('1000001')`` or ``A_CustomerSalesArea(Customer='…',…)``."""
        props = entity_set.properties
        if len(entity_set.keys) == 1:
            name = entity_set.keys[0]
            return f"{entity_set.name}({key_literal(props[name], values[name])})"
        parts = ",".join(f"{k}={key_literal(props[k], values[k])}" for k in entity_set.keys)
        return f"{entity_set.name}({parts})"

    def entity_uri(self, entity_set: EntitySet, record: Record) -> str:
        """Absolute URI of ``record``."""
        return self.root + self.entity_path(entity_set, record.values)

    def entity(self, entity_set: EntitySet, record: Record, shape: Shape) -> dict[str, Any]:
        """One entity in the shape asked for."""
        uri = self.entity_uri(entity_set, record)
        out: dict[str, Any] = {
            "__metadata": {
                "id": uri,
                "uri": uri,
                "type": entity_set.qualified_type,
                "etag": record.etag,
            }
        }
        for prop in entity_set.properties.values():
            if shape.select is None or prop.name in shape.select:
                out[prop.name] = to_json(prop, record.values.get(prop.name))
        for nav in entity_set.navigations.values():
            child_shape = shape.expand.get(nav.name)
            if child_shape is not None:
                target = self.model.entity_sets[nav.target_set]
                related = self.store.related(record.values, nav)
                if nav.to_many:
                    out[nav.name] = {
                        "results": [self.entity(target, r, child_shape) for r in related]
                    }
                else:
                    out[nav.name] = (
                        self.entity(target, related[0], child_shape) if related else None
                    )
            elif shape.select is None or nav.name in shape.deferred:
                out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
        return out


def shape_from_names(tree: dict[str, Any]) -> Shape:
    """A shape expanding the navigation names in ``tree`` (nested dicts), selecting everything."""
    return Shape(expand={name: shape_from_names(sub) for name, sub in tree.items()})
