"""Create, update, upsert and delete, with the platform's own rules.

What the platform does on a write, beyond storing the values:

- defaults of new rows (first state with its default status, two-option and choice defaults);
- ``statecode``/``statuscode`` kept consistent (a new state without status gets the state's
  default status; a status must belong to the row's state);
- computed columns: ``contact.fullname``; ``salesorder.ordernumber`` numbered when not given;
  ``salesorderdetail.baseamount``/``extendedamount`` from price, quantity, discount and tax;
- the base currency (``base_currency``) on rows with money values and no currency;
- SystemRequired columns must have a value (ApplicationRequired ones too when the emulator is
  configured to enforce them: Dataverse itself leaves that to forms);
- deep inserts and ``@odata.bind`` links, all in one store transaction;
- deletes cascade, remove links or are refused along each relationship's delete behaviour.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from decimal import Decimal

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.columns import Cascade, Column, Kind, Required
from d365sap.emulators.dataverse.payload import Payload
from d365sap.emulators.dataverse.schema import Schema, Table, money_currency_column
from d365sap.emulators.dataverse.store import LOOKUP_TABLE, Origin, Row, Store
from d365sap.emulators.dataverse.uri import new_id

_ORDER_SUFFIX = string.ascii_uppercase + string.digits
_CENT = Decimal("0.01")


class Writer:
    """Applies parsed bodies to the store."""

    def __init__(
        self,
        schema: Schema,
        store: Store,
        *,
        enforce_business_required: bool = False,
        base_currency: str = "USD",
    ) -> None:
        self.schema = schema
        self.store = store
        self.enforce_business_required = enforce_business_required
        self.base_currency = base_currency
        self._order_counter = 1000

    # create

    def create(
        self,
        payload: Payload,
        origin: Origin,
        *,
        preset: Mapping[str, object] | None = None,
    ) -> Row:
        """Insert the row of ``payload`` (and its deep inserts and links) atomically.

        ``preset`` holds values decided by the caller: the id and key values of an upsert, the
        lookup of a row created under a parent.
        """
        table = payload.table
        with self.store.transaction():
            values: dict[str, object] = dict(preset or {})
            for prop, value in payload.values.items():
                if prop in values and values[prop] != value:
                    raise errors.invalid_argument(
                        f"The value of '{prop}' in the body differs from the key in the URL."
                    )
                values[prop] = value
            for navigation, child in payload.deep_single:
                related = self.create(child, origin)
                rel = navigation.relationship
                target = self.schema.table(rel.referenced)
                self._set_lookup(
                    table, values, rel.column, rel.referenced, related[target.primary_id]
                )
            for bind in payload.binds.values():
                self._set_lookup(table, values, bind.column.name, bind.table, bind.row_id)
            row_id = str(values.get(table.primary_id) or new_id())
            values[table.primary_id] = row_id
            self._defaults(table, values)
            self._state(table, values, None)
            self._computed(table, values, None)
            self._required(table, values, creating=True, touched=frozenset())
            row = self.store.insert(table.logical_name, values, origin)
            for navigation, children in payload.deep_many:
                rel = navigation.relationship
                child_table = self.schema.table(rel.referencing)
                for child in children:
                    link: dict[str, object] = {}
                    self._set_lookup(child_table, link, rel.column, table.logical_name, row_id)
                    self.create(child, origin, preset=link)
            self._link(table, row_id, payload, origin)
            return self.store.get(table.logical_name, row_id) or row

    # update

    def update(self, payload: Payload, row: Row, origin: Origin) -> Row:
        """Apply ``payload`` to the existing ``row`` atomically."""
        table = payload.table
        row_id = str(row[table.primary_id])
        with self.store.transaction():
            changes = dict(payload.values)
            given_id = changes.pop(table.primary_id, row_id)
            if given_id != row_id:
                raise errors.invalid_argument(
                    f"The primary key '{table.primary_id}' cannot be changed "
                    f"(row {row_id}, body {given_id})."
                )
            for bind in payload.binds.values():
                self._set_lookup(table, changes, bind.column.name, bind.table, bind.row_id)
            merged = {**row, **changes}
            self._state(table, merged, row)
            self._computed(table, merged, row)
            self._required(table, merged, creating=False, touched=frozenset(changes))
            final = {k: v for k, v in merged.items() if k in changes or v != row.get(k)}
            updated = self.store.update(table.logical_name, row_id, final, origin)
            self._link(table, row_id, payload, origin)
            return self.store.get(table.logical_name, row_id) or updated

    # delete

    def delete(self, table: Table, row_id: str, origin: Origin) -> Row:
        """Delete the row, following each relationship's delete behaviour, atomically."""
        with self.store.transaction():
            return self._delete(table, row_id, origin)

    def _delete(self, table: Table, row_id: str, origin: Origin) -> Row:
        for rel in self.schema.referencing(table.logical_name):
            prop = f"_{rel.column}_value"
            children = [
                child
                for child in self.store.rows(rel.referencing)
                if child.get(prop) == row_id and child.get(prop + LOOKUP_TABLE) == rel.referenced
            ]
            child_table = self.schema.table(rel.referencing)
            for child in children:
                child_id = str(child[child_table.primary_id])
                if rel.cascade is Cascade.RESTRICT:
                    raise errors.delete_restricted(
                        table.logical_name, row_id, rel.referencing, rel.column
                    )
                if rel.cascade is Cascade.CASCADE:
                    if self.store.get(rel.referencing, child_id) is not None:
                        self._delete(child_table, child_id, origin)
                    continue
                cleared: dict[str, object] = {prop: None, prop + LOOKUP_TABLE: None}
                if self.store.get(rel.referencing, child_id) is not None:
                    self.store.update(rel.referencing, child_id, cleared, origin)
        return self.store.delete(table.logical_name, row_id, origin)

    # rules

    def _set_lookup(
        self,
        table: Table,
        values: dict[str, object],
        column: str,
        target: str,
        row_id: object,
    ) -> None:
        definition = table.column(column)
        assert definition is not None
        prop = definition.property_name
        values[prop] = None if row_id is None else str(row_id)
        values[prop + LOOKUP_TABLE] = None if row_id is None else target

    def _link(self, table: Table, row_id: str, payload: Payload, origin: Origin) -> None:
        """Point the rows of collection-valued ``@odata.bind`` lists at this row."""
        for navigation, ids in payload.links:
            rel = navigation.relationship
            child_table = self.schema.table(rel.referencing)
            for child_id in ids:
                link: dict[str, object] = {}
                self._set_lookup(child_table, link, rel.column, table.logical_name, row_id)
                self.store.update(rel.referencing, child_id, link, origin)

    def _defaults(self, table: Table, values: dict[str, object]) -> None:
        for column in table.columns:
            if values.get(column.property_name) is None and column.default is not None:
                if column.kind is Kind.STATE and values.get("statuscode") is not None:
                    continue
                values[column.property_name] = column.default

    def _state(self, table: Table, values: dict[str, object], before: Row | None) -> None:
        state_column, status_column = table.column("statecode"), table.column("statuscode")
        if state_column is None or status_column is None:
            return
        state, status = values.get("statecode"), values.get("statuscode")
        old_state = before.get("statecode") if before is not None else None
        old_status = before.get("statuscode") if before is not None else None
        status_given = status is not None and status != old_status
        if state is None and status is not None:
            option = status_column.option(status)
            state = option.state if option is not None else None
            values["statecode"] = state
        if state is None:
            raise errors.invalid_argument(
                f"The 'statecode' attribute of the '{table.logical_name}' entity cannot be null."
            )
        if status is None or (state != old_state and not status_given):
            option = state_column.option(state)
            values["statuscode"] = option.default_status if option is not None else None
            return
        option = status_column.option(status)
        if option is None or option.state != state:
            state_label = state_column.option(state)
            raise errors.invalid_argument(
                f"{status} is not a valid status code for state code "
                f"{table.logical_name}State.{state_label.label if state_label else state} "
                f"on {table.logical_name} (statuscode {status} belongs to statecode "
                f"{option.state if option else '?'})."
            )

    def _computed(self, table: Table, values: dict[str, object], before: Row | None) -> None:
        name = table.logical_name
        if name == "contact":
            parts = [values.get("firstname"), values.get("lastname")]
            values["fullname"] = " ".join(str(p) for p in parts if p) or None
        elif name == "salesorder" and not values.get("ordernumber"):
            self._order_counter += 1
            suffix = "".join(secrets.choice(_ORDER_SUFFIX) for _ in range(6))
            values["ordernumber"] = f"ORD-{self._order_counter:05d}-{suffix}"
        elif name == "salesorderdetail":
            price, quantity = values.get("priceperunit"), values.get("quantity")
            if isinstance(price, Decimal) and isinstance(quantity, Decimal):
                base = (price * quantity).quantize(_CENT)
                discount = values.get("manualdiscountamount") or Decimal(0)
                tax = values.get("tax") or Decimal(0)
                assert isinstance(discount, Decimal)
                assert isinstance(tax, Decimal)
                values["baseamount"] = base
                values["extendedamount"] = (base - discount + tax).quantize(_CENT)
        currency = money_currency_column(table)
        if currency is not None and values.get(currency.property_name) is None:
            has_money = any(
                column.kind is Kind.MONEY and values.get(column.property_name) is not None
                for column in table.columns
            )
            base_id = self._base_currency_id()
            if has_money and base_id is not None:
                self._set_lookup(table, values, currency.name, "transactioncurrency", base_id)

    def _base_currency_id(self) -> str | None:
        currencies = self.schema.tables.get("transactioncurrency")
        key = currencies.key_named(["isocurrencycode"]) if currencies is not None else None
        if key is None:
            return None
        row = self.store.find("transactioncurrency", key, {"isocurrencycode": self.base_currency})
        return str(row["transactioncurrencyid"]) if row is not None else None

    def _required(
        self,
        table: Table,
        values: Mapping[str, object],
        *,
        creating: bool,
        touched: frozenset[str],
    ) -> None:
        """Required columns must have a value: all of them on create, the changed ones after."""
        levels = {Required.SYSTEM}
        if self.enforce_business_required:
            levels.add(Required.APPLICATION)
        for column in table.columns:
            if column.required not in levels or column.read_only:
                continue
            if not creating and column.property_name not in touched:
                continue
            if values.get(column.property_name) in (None, ""):
                raise errors.invalid_argument(_missing(table, column))


def _missing(table: Table, column: Column) -> str:
    return (
        f"The '{column.name}' attribute of the '{table.logical_name}' entity is required "
        f"({column.required.value}, '{column.display_name}') and has no value."
    )
