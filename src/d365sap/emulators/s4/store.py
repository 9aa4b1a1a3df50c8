"""In-memory tables of the emulated system, guarded by one re-entrant lock.

uvicorn serves the emulator from a thread next to the tests (or the demo), so every read and
write goes through this lock. Records are never mutated in place: a write stores a new
:class:`Record`, which makes a transaction snapshot a cheap shallow copy of the tables and lets
an atomic change set (or a deep insert) roll back by putting the copy back.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from d365sap.emulators.s4.edm import EntitySet, Model, Navigation

Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One row: every property of the entity type (absent ones as None) and its change stamp."""

    values: Mapping[str, Any]
    stamp: str

    @property
    def etag(self) -> str:
        """SAP's weak ETag form, ``W/"datetime'2026-11-27T09%3A00%3A00.1234567'"``."""
        return "W/\"datetime'" + quote(self.stamp, safe=".-") + "'\""


class StampClock:
    """Strictly increasing change stamps (100 ns resolution): every write moves the ETag."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        """A new stamp, later than every stamp handed out before."""
        with self._lock:
            ticks = max(time.time_ns() // 100, self._last + 1)
            self._last = ticks
        moment = datetime.fromtimestamp(ticks // 10**7, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ticks % 10**7:07d}"


def _number(record: Record | None, column: str, low: int, high: int) -> int | None:
    """The record's ``column`` as a number when it is all digits and within ``[low, high]``."""
    if record is None:
        return None
    text = str(record.values.get(column))
    if not text.isdigit():
        return None
    number = int(text)
    return number if low <= number <= high else None


def _sort_key(key: Key) -> tuple[tuple[bool, str], ...]:
    return tuple((part is None, "" if part is None else str(part)) for part in key)


class _SortedKeys:
    """The keys of one table in SAP's key order, kept sorted as keys come and go."""

    def __init__(self, keys: Iterator[Key] | list[Key]) -> None:
        self._entries = sorted((_sort_key(k), k) for k in keys)

    def add(self, key: Key) -> None:
        bisect.insort(self._entries, (_sort_key(key), key))

    def discard(self, key: Key) -> None:
        entry = (_sort_key(key), key)
        index = bisect.bisect_left(self._entries, entry)
        if index < len(self._entries) and self._entries[index] == entry:
            del self._entries[index]

    def ordered(self) -> list[Key]:
        return [key for _, key in self._entries]


class _ColumnIndex:
    """The keys of one table by the values of some columns (the join columns of a navigation)."""

    def __init__(self, columns: tuple[str, ...], table: Mapping[Key, Record]) -> None:
        self.columns = columns
        self._keys: dict[tuple[Any, ...], set[Key]] = {}
        for key, record in table.items():
            self.add(key, record)

    def _value(self, record: Record) -> tuple[Any, ...]:
        return tuple(record.values.get(column) for column in self.columns)

    def add(self, key: Key, record: Record) -> None:
        self._keys.setdefault(self._value(record), set()).add(key)

    def discard(self, key: Key, record: Record) -> None:
        value = self._value(record)
        keys = self._keys.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys[value]

    def find(self, value: tuple[Any, ...]) -> set[Key]:
        return self._keys.get(value, set())


class Store:
    """All entity sets of the model as ``{key tuple: Record}`` tables.

    Reads that would scan a whole table per request (every deep insert serializes its children
    through the navigations, every POST looks for the next number) use indexes kept up to date
    by each write: the keys in key order, the keys by join columns, and the largest number of a
    number range. They cost a write what it changed, never the size of the table.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lock = threading.RLock()
        self.clock = StampClock()
        self._tables: dict[str, dict[Key, Record]] = {name: {} for name in model.entity_sets}
        # Undo log of the open transaction: (set, key, previous record or None).
        self._undo: list[tuple[str, Key, Record | None]] | None = None
        self._sorted: dict[str, _SortedKeys] = {}
        self._indexes: dict[str, dict[tuple[str, ...], _ColumnIndex]] = {}
        # (set, column, low, high) -> largest number in [low, high], None: to be recomputed.
        self._maxima: dict[tuple[str, str, int, int], int | None] = {}

    def _store(self, set_name: str, key: Key, record: Record | None) -> None:
        """Put (or, with ``None``, drop) one record, keeping the indexes right."""
        table = self._tables[set_name]
        previous = table.get(key)
        if record is None:
            if previous is None:
                return
            del table[key]
        else:
            table[key] = record
        ordered = self._sorted.get(set_name)
        if ordered is not None:
            if previous is None:
                ordered.add(key)
            elif record is None:
                ordered.discard(key)
        for index in self._indexes.get(set_name, {}).values():
            if previous is not None:
                index.discard(key, previous)
            if record is not None:
                index.add(key, record)
        for tracked in [t for t in self._maxima if t[0] == set_name]:
            self._track(tracked, previous, record)

    def _track(
        self, tracked: tuple[str, str, int, int], previous: Record | None, record: Record | None
    ) -> None:
        _, column, low, high = tracked
        current = self._maxima[tracked]
        if current is None:
            return  # not known: computed when next asked
        old = _number(previous, column, low, high)
        new = _number(record, column, low, high)
        if old == current and (new is None or new < current):
            self._maxima[tracked] = None  # the largest went: recomputed when next asked
        elif new is not None and new > current:
            self._maxima[tracked] = new

    def get(self, set_name: str, key: Key) -> Record | None:
        """The record with ``key`` or None."""
        with self.lock:
            return self._tables[set_name].get(key)

    def get_many(self, set_name: str, keys: list[Key]) -> list[Record]:
        """The records of those ``keys`` that exist, in key order."""
        with self.lock:
            table = self._tables[set_name]
            found = (table.get(key) for key in sorted(set(keys), key=_sort_key))
            return [record for record in found if record is not None]

    def rows(self, set_name: str) -> list[Record]:
        """All records of ``set_name`` in key order (SAP's default order)."""
        with self.lock:
            table = self._tables[set_name]
            ordered = self._sorted.get(set_name)
            if ordered is None:
                ordered = self._sorted[set_name] = _SortedKeys(list(table))
            return [table[k] for k in ordered.ordered()]

    def largest_number(self, set_name: str, column: str, low: int, high: int) -> int | None:
        """The largest all-digit value of ``column`` within ``[low, high]`` (None: none yet)."""
        tracked = (set_name, column, low, high)
        with self.lock:
            if tracked in self._maxima and self._maxima[tracked] is not None:
                return self._maxima[tracked]
            found = [
                number
                for record in self._tables[set_name].values()
                if (number := _number(record, column, low, high)) is not None
            ]
            largest = max(found, default=None)
            self._maxima[tracked] = largest
            return largest

    def put(self, entity_set: EntitySet, values: Mapping[str, Any]) -> Record:
        """Insert or replace the record with the key of ``values``; gives it a new stamp."""
        record = Record(dict(values), self.clock.next())
        key = entity_set.key_of(values)
        with self.lock:
            table = self._tables[entity_set.name]
            if self._undo is not None:
                self._undo.append((entity_set.name, key, table.get(key)))
            self._store(entity_set.name, key, record)
        return record

    def remove(self, set_name: str, key: Key) -> None:
        """Delete the record with ``key`` if present."""
        with self.lock:
            previous = self._tables[set_name].get(key)
            self._store(set_name, key, None)
            if self._undo is not None and previous is not None:
                self._undo.append((set_name, key, previous))

    def related(self, source: Mapping[str, Any], nav: Navigation) -> list[Record]:
        """Records reached from ``source`` values through ``nav``, in key order."""
        if not nav.links:
            return []
        wanted = [(target, source.get(src)) for src, target in nav.links]
        if any(value is None for _, value in wanted):
            return []
        return self.matching(nav.target_set, dict(wanted))

    def matching(self, set_name: str, values: Mapping[str, Any]) -> list[Record]:
        """Records of ``set_name`` whose columns hold ``values``, in key order (indexed)."""
        columns = tuple(values)
        with self.lock:
            table = self._tables[set_name]
            indexes = self._indexes.setdefault(set_name, {})
            index = indexes.get(columns)
            if index is None:
                index = indexes[columns] = _ColumnIndex(columns, table)
            keys = index.find(tuple(values.values()))
            return [table[k] for k in sorted(keys, key=_sort_key)]

    def owner_keys(
        self, entity_set: EntitySet, values: Mapping[str, Any]
    ) -> list[tuple[EntitySet, Key, bool]]:
        """For each owner set of ``entity_set``: owner set, the owner key, and whether it exists."""
        result: list[tuple[EntitySet, Key, bool]] = []
        for owner, nav in self.model.parents_of(entity_set.name):
            by_source = {src: values.get(target) for src, target in nav.links}
            if set(by_source) != set(owner.keys):
                continue
            key = owner.key_of(by_source)
            result.append((owner, key, self.get(owner.name, key) is not None))
        return result

    def counts(self) -> dict[str, int]:
        """Number of records per non-empty entity set."""
        with self.lock:
            return {name: len(t) for name, t in self._tables.items() if t}

    def clear(self) -> None:
        """Drop every record."""
        with self.lock:
            for table in self._tables.values():
                table.clear()
            self._sorted.clear()
            self._indexes.clear()
            self._maxima.clear()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock; on an exception undo every change made inside, then re-raise.

        Changes are undone from a log of what each write replaced, so a rollback costs what the
        transaction wrote, not the size of the tables. Transactions nest: an inner one that fails
        undoes its own changes only.
        """
        with self.lock:
            outer = self._undo is None
            if outer:
                self._undo = []
            assert self._undo is not None
            mark = len(self._undo)
            try:
                yield
            except BaseException:
                undo = self._undo
                while len(undo) > mark:
                    set_name, key, previous = undo.pop()
                    self._store(set_name, key, previous)
                raise
            finally:
                if outer:
                    self._undo = None
