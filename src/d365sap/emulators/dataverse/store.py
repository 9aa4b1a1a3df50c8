"""The emulated environment's rows, in memory, with row versions and change events.

Rows are dicts keyed by Web API property name (logical names, lookups as ``_<name>_value`` with
the referenced table in ``_<name>_value@Microsoft.Dynamics.CRM.lookuplogicalname``); every column
of the table is present, unset ones as None. A stored row is never changed in place: a write
stores a new dict, so a reader may keep what it got.

Every write takes the next ``versionnumber`` from one counter shared by all tables (so versions
order all changes, which change tracking relies on) and stamps ``modifiedon``; a create also
stamps ``createdon``. Alternate keys are unique (strings compared case-insensitively, like
Dataverse's database collation; keys with an empty column are not indexed).

:meth:`Store.transaction` makes a group of writes atomic: on an exception inside, every change is
undone and no listener hears of it. Listeners (:meth:`Store.subscribe`) are called after each
committed change, or after the outermost transaction commits, with the full rows before and
after; they run under the store lock and must not block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.columns import Column
from d365sap.emulators.dataverse.events import ChangeKind, ChangeListener, RowChange
from d365sap.emulators.dataverse.lookup_index import LookupIndexes
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.schema import AlternateKey, Schema, Table

log = logging.getLogger(__name__)
Row = Mapping[str, object]
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
FIRST_VERSION = 1_000_000
SYSTEM_CALLER = Caller(user_id="00000000-0000-0000-0000-000000000000", client_id="")


@dataclass(frozen=True, slots=True)
class Origin:
    """Who made a change and in which request (carried into :class:`RowChange`)."""

    caller: Caller
    request_id: str


SYSTEM = Origin(SYSTEM_CALLER, "")


def utc_now() -> datetime:
    """Now, to the second (Dataverse's precision for ``createdon``/``modifiedon``)."""
    return datetime.now(UTC).replace(microsecond=0)


def key_part(value: object) -> object:
    """How a key value is compared: strings without regard to case."""
    return value.casefold() if isinstance(value, str) else value


def lookup_table_key(column: Column) -> str:
    """The row key holding the table a lookup value points at."""
    return column.property_name + LOOKUP_TABLE


@dataclass
class _Undo:
    table: str
    row_id: str
    previous: Row | None


class Store:
    """All rows of all tables of one emulated environment."""

    def __init__(
        self,
        schema: Schema,
        *,
        first_version: int = FIRST_VERSION,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.schema = schema
        self.lock = threading.RLock()
        self._clock = clock
        self._version = first_version - 1
        self._rows: dict[str, dict[str, Row]] = {name: {} for name in schema.tables}
        self._keys: dict[str, dict[str, dict[tuple[object, ...], str]]] = {}
        self._listeners: list[ChangeListener] = []
        self._undo: list[_Undo] | None = None
        self._pending: list[RowChange] = []
        self._quiet = 0
        self._lookups = LookupIndexes()
        for table in schema.tables.values():
            self._keys[table.logical_name] = {k.name: {} for k in table.alternate_keys}

    # reading

    @property
    def version(self) -> int:
        """The highest ``versionnumber`` handed out so far."""
        with self.lock:
            return self._version

    def get(self, table: str, row_id: str) -> Row | None:
        """The row with primary key ``row_id`` (a lower-case GUID), or None."""
        with self.lock:
            return self._rows[table].get(row_id)

    def rows(self, table: str) -> list[Row]:
        """All rows of ``table`` in creation order."""
        with self.lock:
            return list(self._rows[table].values())

    def rows_with(self, table: str, prop: str, value: object) -> list[Row]:
        """Rows of ``table`` whose ``prop`` (e.g. ``_sap_accountid_value``) is ``value``.

        In creation order, like :meth:`rows`; indexed (see :mod:`.lookup_index`).
        """
        with self.lock:
            return self._lookups.rows_with(table, prop, value, self._rows[table])

    def find(self, table: str, key: AlternateKey, values: Mapping[str, object]) -> Row | None:
        """The row whose alternate ``key`` columns (by property name) have ``values``."""
        definition = self.schema.table(table)
        parts = self._parts(definition, key, values)
        with self.lock:
            row_id = self._keys[table][key.name].get(parts) if parts is not None else None
            return self._rows[table].get(row_id) if row_id is not None else None

    def counts(self) -> dict[str, int]:
        """Number of rows per table."""
        with self.lock:
            return {name: len(rows) for name, rows in self._rows.items()}

    # writing

    def insert(self, table: str, values: Mapping[str, object], origin: Origin) -> Row:
        """Store a new row; ``values`` must hold the primary key (a lower-case GUID)."""
        definition = self.schema.table(table)
        with self.lock:
            row_id = str(values[definition.primary_id])
            if row_id in self._rows[table]:
                raise errors.already_exists()
            now = self._clock()
            row: dict[str, object] = dict.fromkeys(definition.property_names())
            row.update(dict.fromkeys(lookup_table_key(c) for c in definition.lookups()))
            row.update(values)
            row["createdon"] = values.get("createdon") or now
            row["modifiedon"] = values.get("modifiedon") or now
            row["versionnumber"] = self._next_version()
            self._check_keys(definition, row, row_id)
            self._put(table, row_id, row)
            given = frozenset(name for name in values if "@" not in name)
            self._record(definition, "Create", row_id, None, row, origin, given)
            return row

    def update(self, table: str, row_id: str, changes: Mapping[str, object], origin: Origin) -> Row:
        """Apply ``changes`` to the row; a new version even when no value changes."""
        definition = self.schema.table(table)
        with self.lock:
            before = self._rows[table].get(row_id)
            if before is None:
                raise errors.row_not_found(table, row_id)
            row = {**before, **changes}
            row["modifiedon"] = self._clock()
            row["versionnumber"] = self._next_version()
            self._check_keys(definition, row, row_id)
            self._put(table, row_id, row)
            changed = frozenset(
                name
                for name, value in changes.items()
                if "@" not in name and before.get(name) != value
            )
            self._record(definition, "Update", row_id, before, row, origin, changed)
            return row

    def delete(self, table: str, row_id: str, origin: Origin) -> Row:
        """Remove the row and return it as it was."""
        definition = self.schema.table(table)
        with self.lock:
            before = self._rows[table].get(row_id)
            if before is None:
                raise errors.row_not_found(table, row_id)
            if self._undo is not None:
                self._undo.append(_Undo(table, row_id, before))
            del self._rows[table][row_id]
            self._unindex(definition, before)
            self._lookups.taken(table, row_id, before, gone=True)
            self._record(definition, "Delete", row_id, before, None, origin, frozenset())
            return before

    def clear(self) -> None:
        """Drop every row (no events; the version counter keeps counting)."""
        with self.lock:
            self._lookups.clear()
            for table, rows in self._rows.items():
                rows.clear()
                for index in self._keys[table].values():
                    index.clear()

    # transactions and events

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock; undo every change made inside if an exception leaves the block.

        Transactions nest: an inner one that fails undoes only its own changes. Change events
        are delivered when the outermost transaction commits, never for undone changes.
        """
        with self.lock:
            outer = self._undo is None
            if outer:
                self._undo = []
                self._pending = []
            assert self._undo is not None
            mark, events_mark = len(self._undo), len(self._pending)
            try:
                yield
            except BaseException:
                self._roll_back(mark)
                del self._pending[events_mark:]
                if outer:
                    self._undo = None
                    self._pending = []
                raise
            if outer:
                self._undo = None
                pending, self._pending = self._pending, []
                for change in pending:
                    self._notify(change)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Writes inside announce nothing (loading seed data is not a change anyone follows)."""
        with self.lock:
            self._quiet += 1
            try:
                yield
            finally:
                self._quiet -= 1

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` after every committed change; returns the unsubscribe function."""
        with self.lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self.lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # internals

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def _put(self, table: str, row_id: str, row: Row) -> None:
        previous = self._rows[table].get(row_id)
        if self._undo is not None:
            self._undo.append(_Undo(table, row_id, previous))
        definition = self.schema.table(table)
        if previous is not None:
            self._unindex(definition, previous)
            self._lookups.taken(table, row_id, previous, gone=False)
        self._rows[table][row_id] = row
        self._index(definition, row, row_id)
        self._lookups.placed(table, row_id, row, new_position=previous is None)

    def _roll_back(self, mark: int) -> None:
        assert self._undo is not None
        while len(self._undo) > mark:
            undo = self._undo.pop()
            definition = self.schema.table(undo.table)
            current = self._rows[undo.table].pop(undo.row_id, None)
            if current is not None:
                self._unindex(definition, current)
                self._lookups.taken(undo.table, undo.row_id, current, gone=True)
            if undo.previous is not None:
                self._rows[undo.table][undo.row_id] = undo.previous
                self._index(definition, undo.previous, undo.row_id)
                self._lookups.placed(undo.table, undo.row_id, undo.previous, new_position=True)

    def _parts(
        self, table: Table, key: AlternateKey, row: Mapping[str, object]
    ) -> tuple[object, ...] | None:
        parts: list[object] = []
        for name in key.columns:
            column = table.column(name)
            assert column is not None
            value = row.get(column.property_name)
            if value is None or value == "":
                return None
            parts.append(key_part(value))
        return tuple(parts)

    def _check_keys(self, table: Table, row: Row, row_id: str) -> None:
        for key in table.alternate_keys:
            parts = self._parts(table, key, row)
            holder = self._keys[table.logical_name][key.name].get(parts) if parts else None
            if holder is not None and holder != row_id:
                raise errors.duplicate_key(key.display_name, ", ".join(key.columns))

    def _index(self, table: Table, row: Row, row_id: str) -> None:
        for key in table.alternate_keys:
            parts = self._parts(table, key, row)
            if parts is not None:
                self._keys[table.logical_name][key.name][parts] = row_id

    def _unindex(self, table: Table, row: Row) -> None:
        for key in table.alternate_keys:
            parts = self._parts(table, key, row)
            if parts is not None:
                self._keys[table.logical_name][key.name].pop(parts, None)

    def _record(
        self,
        table: Table,
        kind: ChangeKind,
        row_id: str,
        before: Row | None,
        after: Row | None,
        origin: Origin,
        changed: frozenset[str],
    ) -> None:
        version = self._next_version() if after is None else cast(int, after["versionnumber"])
        change = RowChange(
            table=table.logical_name,
            entity_set=table.entity_set,
            row_id=row_id,
            kind=kind,
            before=before,
            after=after,
            version=version,
            caller=origin.caller,
            request_id=origin.request_id,
            changed_columns=changed,
        )
        if self._quiet:
            return
        if self._undo is not None:
            self._pending.append(change)
        else:
            self._notify(change)

    def _notify(self, change: RowChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("change listener failed on %s %s", change.kind, change.row_id)
