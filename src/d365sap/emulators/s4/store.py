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
        with self.lock:
            self._tables[entity_set.name][entity_set.key_of(values)] = record
        return record

    def remove(self, set_name: str, key: Key) -> None:
        """Delete the record with ``key`` if present."""
        with self.lock:
            self._tables[set_name].pop(key, None)

    def related(self, source: Mapping[str, Any], nav: Navigation) -> list[Record]:
        """Records reached from ``source`` values through ``nav``, in key order."""
        if not nav.links:
            return []
        wanted = [(target, source.get(src)) for src, target in nav.links]
        if any(value is None for _, value in wanted):
            return []
        return [
            r
            for r in self.rows(nav.target_set)
            if all(r.values.get(target) == value for target, value in wanted)
        ]

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
        """Hold the lock; on an exception put every table back as it was, then re-raise."""
        with self.lock:
            snapshot = {name: dict(table) for name, table in self._tables.items()}
            try:
                yield
            except BaseException:
                self._tables = snapshot
                raise
