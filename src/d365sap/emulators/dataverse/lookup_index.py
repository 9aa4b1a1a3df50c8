"""Rows by the value of a lookup column, so a collection navigation does not scan its table.

``$expand`` of a one-to-many navigation (an account's ERP accounts) and a ``$filter`` such as
``_sap_accountid_value eq …`` ask for the rows whose lookup holds one id. Scanning the
referencing table for that made every read cost the size of the table. :class:`LookupIndexes`
keeps, per table and lookup property, the row ids by value, built on first use and kept up to
date by the store's writes, plus each row's position in creation order so the rows come back
in the order a scan would give them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

Row = Mapping[str, object]


class LookupIndexes:
    """The store's lookup indexes (the store calls it under its lock)."""

    def __init__(self) -> None:
        self._by_value: dict[str, dict[str, dict[object, set[str]]]] = {}
        self._position: dict[str, dict[str, int]] = {}
        self._counter = itertools.count()

    def placed(self, table: str, row_id: str, row: Row, *, new_position: bool) -> None:
        """``row`` is now stored under ``row_id`` (``new_position``: at the end of the order)."""
        if new_position:
            self._position.setdefault(table, {})[row_id] = next(self._counter)
        for prop, index in self._by_value.get(table, {}).items():
            index.setdefault(row.get(prop), set()).add(row_id)

    def taken(self, table: str, row_id: str, row: Row, *, gone: bool) -> None:
        """``row`` no longer stands under ``row_id`` (``gone``: the row left the table)."""
        if gone:
            self._position.get(table, {}).pop(row_id, None)
        for prop, index in self._by_value.get(table, {}).items():
            ids = index.get(row.get(prop))
            if ids is not None:
                ids.discard(row_id)
                if not ids:
                    del index[row.get(prop)]

    def clear(self) -> None:
        """Forget everything (the store dropped its rows)."""
        self._by_value.clear()
        self._position.clear()

    def rows_with(self, table: str, prop: str, value: object, rows: Mapping[str, Row]) -> list[Row]:
        """Rows of ``rows`` (the table) whose ``prop`` is ``value``, in creation order."""
        indexes = self._by_value.setdefault(table, {})
        index = indexes.get(prop)
        if index is None:
            index = indexes[prop] = {}
            for row_id, row in rows.items():
                index.setdefault(row.get(prop), set()).add(row_id)
        positions = self._position.get(table, {})
        ids = sorted(index.get(value, ()), key=lambda row_id: positions.get(row_id, -1))
        return [rows[row_id] for row_id in ids if row_id in rows]
