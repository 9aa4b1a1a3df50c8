"""Reading a JSON entity from a request body, strictly, against the entity type.

This is the deserialisation step of SAP Gateway: it runs before any business logic and rejects
what the real service would not accept at all: malformed JSON, unknown properties, values of the
wrong type or over ``MaxLength``, properties ``sap:creatable``/``sap:updatable`` forbid, and deep
structures in updates. Each rejection names the property (``propertyref``) and where it sits in
a deep insert (``target``, e.g. ``to_SalesAreaTax[0]/CustomerTaxCategory``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.edm import EntitySet, Model, Navigation
from d365sap.emulators.s4.values import InvalidValueError, from_json


class Mode(Enum):
    """What the entity is read for; decides which sap: annotations apply."""

    CREATE = "create"
    UPDATE = "update"
    SEED = "seed"


@dataclass
class Parsed:
    """An entity read from JSON: its scalar values and, for deep inserts, its children."""

    entity_set: EntitySet
    values: dict[str, Any]
    children: list[tuple[Navigation, list[Parsed]]] = field(default_factory=list)
    path: str = ""

    def shape_names(self) -> dict[str, Any]:
        """Navigation names present in the payload, nested (used to expand the 201 reply)."""
        tree: dict[str, Any] = {}
        for nav, kids in self.children:
            branch = tree.setdefault(nav.name, {})
            for kid in kids:
                branch.update(kid.shape_names())
        return tree


def load_json(body: bytes) -> Any:
    """Decode a request body as JSON or raise SAP's malformed-payload error."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise errors.ODataError(
            400, errors.MALFORMED_BODY, "Malformed payload: the body is not valid UTF-8"
        ) from exc
    except json.JSONDecodeError as exc:
        raise errors.ODataError(
            400,
            errors.MALFORMED_BODY,
            f"Malformed JSON payload at line {exc.lineno}, column {exc.colno}: {exc.msg}",
        ) from exc


def _value_error(name: str, raw: Any, problem: InvalidValueError, target: str) -> errors.ODataError:
    shown = "null" if raw is None else str(raw)
    return errors.property_error(
        400,
        errors.INVALID_VALUE,
        f"Property '{name}' has invalid value '{shown}': {problem.detail}",
        name,
        target,
    )


def _entries(nav: Navigation, raw: Any, target: str) -> list[Any]:
    if nav.to_many:
        if isinstance(raw, dict) and set(raw) == {"results"}:
            raw = raw["results"]
        if isinstance(raw, list):
            return raw
    elif isinstance(raw, dict) and "results" not in raw:
        return [raw]
    shape = 'a list or {"results": [...]}' if nav.to_many else "a single JSON object"
    raise errors.property_error(
        400,
        errors.INVALID_VALUE,
        f"Navigation property '{nav.name}' must hold {shape}",
        nav.name,
        target,
    )


def parse_entity(
    model: Model, entity_set: EntitySet, raw: Any, mode: Mode, path: str = ""
) -> Parsed:
    """Check ``raw`` against ``entity_set`` and convert its values; raises ``ODataError``."""
    if not isinstance(raw, dict):
        raise errors.ODataError(
            400,
            errors.MALFORMED_BODY,
            f"Malformed payload: a JSON object of type '{entity_set.qualified_type}' is expected"
            + (f" at '{path.rstrip('/')}'" if path else ""),
        )
    parsed = Parsed(entity_set, {}, path=path)
    for name, value in raw.items():
        target = f"{path}{name}"
        if name == "__metadata":
            continue
        prop = entity_set.properties.get(name)
        if prop is not None:
            if mode is Mode.CREATE and not prop.creatable:
                raise errors.property_error(
                    400,
                    errors.NOT_CHANGEABLE,
                    f"Property '{name}' of '{entity_set.type_name}' is not creatable",
                    name,
                    target,
                )
            if mode is Mode.UPDATE and not prop.updatable:
                raise errors.property_error(
                    400,
                    errors.NOT_CHANGEABLE,
                    f"Property '{name}' of '{entity_set.type_name}' is not updatable",
                    name,
                    target,
                )
            try:
                parsed.values[name] = from_json(prop, value)
            except InvalidValueError as problem:
                raise _value_error(name, value, problem, target) from problem
            continue
        nav = entity_set.navigations.get(name)
        if nav is None:
            raise errors.property_error(
                400,
                errors.INVALID_PROPERTY,
                f"Property '{name}' is invalid: it does not exist in type "
                f"'{entity_set.qualified_type}'",
                name,
                target,
            )
        if value is None or (isinstance(value, dict) and "__deferred" in value):
            continue
        if mode is Mode.UPDATE:
            raise errors.property_error(
                400,
                errors.INVALID_PROPERTY,
                f"Navigation property '{name}' is not allowed in an update (no deep update)",
                name,
                target,
            )
        child_set = model.entity_sets[nav.target_set]
        kids = [
            parse_entity(model, child_set, item, mode, f"{target}[{index}]/")
            for index, item in enumerate(_entries(nav, value, target))
        ]
        parsed.children.append((nav, kids))
    return parsed
