"""In-memory tables of the emulated system, guarded by one re-entrant lock.

uvicorn serves the emulator from a thread next to the tests (or the demo), so every read and
write goes through this lock. Records are never mutated in place: a write stores a new
:class:`Record`, which makes a transaction snapshot a cheap shallow copy of the tables and lets
an atomic change set (or a deep insert) roll back by putting the copy back.
"""

from __future__ import annotations

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


def _sort_key(key: Key) -> tuple[tuple[bool, str], ...]:
    return tuple((part is None, "" if part is None else str(part)) for part in key)


class Store:
    """All entity sets of the model as ``{key tuple: Record}`` tables."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lock = threading.RLock()
        self.clock = StampClock()
        self._tables: dict[str, dict[Key, Record]] = {name: {} for name in model.entity_sets}
        # Undo log of the open transaction: (set, key, previous record or None).
        self._undo: list[tuple[str, Key, Record | None]] | None = None

    def get(self, set_name: str, key: Key) -> Record | None:
        """The record with ``key`` or None."""
        with self.lock:
            return self._tables[set_name].get(key)

    def rows(self, set_name: str) -> list[Record]:
        """All records of ``set_name`` in key order (SAP's default order)."""
        with self.lock:
            table = self._tables[set_name]
            return [table[k] for k in sorted(table, key=_sort_key)]

    def put(self, entity_set: EntitySet, values: Mapping[str, Any]) -> Record:
        """Insert or replace the record with the key of ``values``; gives it a new stamp."""
        record = Record(dict(values), self.clock.next())
        key = entity_set.key_of(values)
        with self.lock:
            table = self._tables[entity_set.name]
            if self._undo is not None:
                self._undo.append((entity_set.name, key, table.get(key)))
            table[key] = record
        return record

    def remove(self, set_name: str, key: Key) -> None:
        """Delete the record with ``key`` if present."""
        with self.lock:
            previous = self._tables[set_name].pop(key, None)
            if self._undo is not None and previous is not None:
                self._undo.append((set_name, key, previous))

    def related(self, source: Mapping[str, Any], nav: Navigation) -> list[Record]:
        """Records reached from ``source`` values through ``nav``, in key order."""
        if not nav.links:
            return []
        wanted = [(target, source.get(src)) for src, target in nav.links]
        if any(value is None for _, value in wanted):
            return []
        with self.lock:
            table = self._tables[nav.target_set]
            # Filter first, then sort the few matches: sorting the whole set per call made
            # every deep insert cost more as the set grew.
            keys = [
                k
                for k, r in table.items()
                if all(r.values.get(target) == value for target, value in wanted)
            ]
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
                    if previous is None:
                        self._tables[set_name].pop(key, None)
                    else:
                        self._tables[set_name][key] = previous
                raise
            finally:
                if outer:
                    self._undo = None
