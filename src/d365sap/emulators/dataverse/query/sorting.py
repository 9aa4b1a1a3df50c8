"""Row order for ``$orderby`` and paging: the requested columns, then the primary key.

Dataverse always orders by the primary key last, which makes the order total; the paging
cookie then only has to remember the last row's sort values and key to find where the next
page starts, however many rows were inserted or deleted in between. NULL is the lowest value
(first ascending, last descending), as in SQL Server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from d365sap.emulators.dataverse.query.types import GUID, QueryTable, Row
from d365sap.emulators.dataverse.query.values import normalize


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ``$orderby`` item."""

    column: str
    edm_type: str
    descending: bool = False


def sort_specs(table: QueryTable, orderby: Sequence[OrderBy]) -> tuple[OrderBy, ...]:
    """``orderby`` plus the primary key (ascending) unless already there."""
    if any(spec.column == table.primary_id for spec in orderby):
        return tuple(orderby)
    column = table.column(table.primary_id)
    key_type = column.edm_type if column is not None else GUID
    return (*orderby, OrderBy(table.primary_id, key_type))


def raw_key(row: Row, specs: Sequence[OrderBy]) -> tuple[object, ...]:
    """The row's values of the sort columns, as stored (what a paging cookie keeps)."""
    return tuple(row.get(spec.column) for spec in specs)


def normalized_key(raw: Sequence[object], specs: Sequence[OrderBy]) -> tuple[object, ...]:
    """A raw key with every value in its comparable form (NULL stays ``None``)."""
    return tuple(
        None if value is None else normalize(value, spec.edm_type)
        for value, spec in zip(raw, specs, strict=True)
    )


def _three_way(a: Any, b: Any) -> int:
    """NULL lowest; otherwise both are normalized to the same comparable type."""
    if a is None or b is None:
        return int(a is not None) - int(b is not None)
    return int(a > b) - int(a < b)


def _compare_normalized(
    left: Sequence[object], right: Sequence[object], specs: Sequence[OrderBy]
) -> int:
    for a, b, spec in zip(left, right, specs, strict=True):
        result = _three_way(a, b)
        if result:
            return -result if spec.descending else result
    return 0


def compare_keys(left: Sequence[object], right: Sequence[object], specs: Sequence[OrderBy]) -> int:
    """-1, 0 or 1: how two raw keys order under ``specs``."""
    return _compare_normalized(normalized_key(left, specs), normalized_key(right, specs), specs)


def sort_rows(rows: Iterable[Row], specs: Sequence[OrderBy]) -> list[Row]:
    """``rows`` in ``specs`` order (each row's key is normalized once)."""
    keyed = [(normalized_key(raw_key(row, specs), specs), row) for row in rows]

    def compare(left: tuple[tuple[object, ...], Row], right: tuple[tuple[object, ...], Row]) -> int:
        return _compare_normalized(left[0], right[0], specs)

    keyed.sort(key=cmp_to_key(compare))
    return [row for _, row in keyed]
