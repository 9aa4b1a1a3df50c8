"""Creates (with deep insert), updates and deletes, applied atomically to the store.

A deep insert either lands completely or not at all: everything runs inside one store
transaction, and any rejection on any level rolls the whole tree back, as S/4 does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.edm import EntitySet, Model, Navigation
from d365sap.emulators.s4.payload import Parsed
from d365sap.emulators.s4.rules import Rules
from d365sap.emulators.s4.store import Key, Record, Store

Via = tuple[EntitySet, Record, Navigation]


def _etag_core(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def check_if_match(entity_set: EntitySet, record: Record, if_match: str | None) -> None:
    """Honour ``If-Match``: absent or ``*`` passes, otherwise one tag must match (412 if not)."""
    if if_match is None:
        return
    candidates = [c for c in (part.strip() for part in if_match.split(",")) if c]
    if "*" in candidates or _etag_core(record.etag) in {_etag_core(c) for c in candidates}:
        return
    raise errors.ODataError(
        412,
        errors.PRECONDITION_FAILED,
        f"Precondition failed: the ETag of the '{entity_set.type_name}' entity has changed; "
        "read it again",
        [
            errors.Detail(
                errors.PRECONDITION_FAILED,
                f"If-Match {if_match} does not match current ETag {record.etag}",
            )
        ],
    )


def _key_text(key: Key) -> str:
    return "/".join("" if part is None else str(part) for part in key)


class Writer:
    """Applies parsed entities to the store under the rules of the service."""

    def __init__(self, model: Model, store: Store, rules: Rules) -> None:
        self.model = model
        self.store = store
        self.rules = rules

    def create(self, entity_set: EntitySet, parsed: Parsed, user: str, via: Via | None) -> Record:
        """POST: insert ``parsed`` and its deep children; returns the stored top record."""
        if via is None and not entity_set.creatable:
            raise errors.ODataError(
                405,
                errors.METHOD_NOT_ALLOWED,
                f"Entity set '{entity_set.name}' is not creatable (sap:creatable=false); "
                "create it through its business partner",
            )
        with self.store.transaction():
            key = self._insert(entity_set, parsed, user, via)
        record = self.store.get(entity_set.name, key)
        assert record is not None
        return record

    def seed(self, entity_set: EntitySet, parsed: Parsed, user: str) -> None:
        """Load one seed entity tree; like :meth:`create` but any entity set may be seeded."""
        with self.store.transaction():
            self._insert(entity_set, parsed, user, None)

    def _inherit(self, parsed: Parsed, values: dict[str, Any], via: Via) -> None:
        parent_set, parent, nav = via
        for source, target in nav.links:
            inherited = self.rules.link_value(parent_set, parent.values, nav, source)
            given = values.get(target)
            if given is not None and given != inherited:
                raise errors.property_error(
                    400,
                    errors.INVALID_VALUE,
                    f"Property '{target}' has invalid value '{given}': it must match "
                    f"'{inherited}' of the parent '{parent_set.type_name}'",
                    target,
                    f"{parsed.path}{target}",
                )
            values[target] = inherited

    def _check_owner(self, entity_set: EntitySet, values: Mapping[str, Any], path: str) -> None:
        owners = self.store.owner_keys(entity_set, values)
        if not owners or any(exists for _, _, exists in owners):
            return
        owner, key, _ = owners[0]
        prop = owner.keys[0]
        if owner.name == "A_Customer":
            code, message = errors.CUSTOMER_MISSING, f"Customer {_key_text(key)} does not exist"
        else:
            code = errors.OWNER_MISSING
            message = f"{owner.label or owner.type_name} {_key_text(key)} does not exist"
        raise errors.property_error(400, code, message, prop, f"{path}{prop}")

    def _insert(self, entity_set: EntitySet, parsed: Parsed, user: str, via: Via | None) -> Key:
        values = dict(parsed.values)
        if via is not None:
            self._inherit(parsed, values, via)
        self.rules.prepare_create(entity_set, values, user)
        for name in entity_set.keys:
            if values.get(name) is None:
                raise errors.property_error(
                    400,
                    errors.KEY_MISSING,
                    f"Key property '{name}' of '{entity_set.type_name}' is missing",
                    name,
                    f"{parsed.path}{name}",
                )
        if via is None:
            self._check_owner(entity_set, values, parsed.path)
        key = entity_set.key_of(values)
        if self.store.get(entity_set.name, key) is not None:
            raise errors.ODataError(
                400,
                errors.ALREADY_EXISTS,
                f"{entity_set.label or entity_set.type_name} {_key_text(key)} already exists",
                [
                    errors.Detail(
                        errors.ALREADY_EXISTS,
                        f"Instance of '{entity_set.type_name}' with key "
                        f"{_key_text(key)} already exists",
                        ",".join(entity_set.keys),
                        f"{parsed.path}{entity_set.name}",
                    )
                ],
            )
        row = {name: values.get(name) for name in entity_set.properties}
        record = self.store.put(entity_set, row)
        for nav, kids in parsed.children:
            child_set = self.model.entity_sets[nav.target_set]
            for kid in kids:
                current = self.store.get(entity_set.name, key) or record
                self._insert(child_set, kid, user, (entity_set, current, nav))
        if via is not None:
            stored = self.store.get(entity_set.name, key) or record
            self.rules.after_create(entity_set, stored, (via[0], via[2]))
        return key

    def update(
        self,
        entity_set: EntitySet,
        key: Key,
        parsed: Parsed,
        user: str,
        if_match: str | None,
        *,
        replace: bool,
    ) -> Record:
        """PATCH/MERGE (``replace=False``) or PUT (``replace=True``) the keyed entity."""
        if not entity_set.updatable:
            raise errors.ODataError(
                405,
                errors.METHOD_NOT_ALLOWED,
                f"Entity set '{entity_set.name}' is not updatable (sap:updatable=false)",
            )
        with self.store.transaction():
            record = self.store.get(entity_set.name, key)
            if record is None:
                raise errors.not_found(entity_set.type_name)
            check_if_match(entity_set, record, if_match)
            for name in entity_set.keys:
                if name in parsed.values and parsed.values[name] != record.values[name]:
                    raise errors.property_error(
                        400,
                        errors.NOT_CHANGEABLE,
                        f"Key property '{name}' cannot be changed "
                        f"(from '{record.values[name]}' to '{parsed.values[name]}')",
                        name,
                    )
            values = dict(record.values)
            if replace:
                for prop in entity_set.properties.values():
                    if prop.updatable and prop.name not in entity_set.keys:
                        values[prop.name] = None
            values.update(parsed.values)
            self.rules.prepare_update(entity_set, values, user)
            return self.store.put(entity_set, values)

    def delete(self, entity_set: EntitySet, key: Key, if_match: str | None) -> None:
        """DELETE the keyed entity and what it owns, if the entity set allows deletion."""
        if not entity_set.deletable:
            raise errors.ODataError(
                405,
                errors.METHOD_NOT_ALLOWED,
                f"Entity set '{entity_set.name}' is not deletable (sap:deletable=false)",
            )
        with self.store.transaction():
            record = self.store.get(entity_set.name, key)
            if record is None:
                raise errors.not_found(entity_set.type_name)
            check_if_match(entity_set, record, if_match)
            self._remove(entity_set, record)

    def _remove(self, entity_set: EntitySet, record: Record) -> None:
        for nav in entity_set.navigations.values():
            if nav.to_many and nav.source_is_principal:
                child_set = self.model.entity_sets[nav.target_set]
                for child in self.store.related(record.values, nav):
                    self._remove(child_set, child)
        self.store.remove(entity_set.name, entity_set.key_of(record.values))
