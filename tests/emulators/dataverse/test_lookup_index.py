"""The lookup index gives the rows a scan of the table would give, in the same order."""

from __future__ import annotations

import random

from d365sap.emulators.dataverse.lookup_index import LookupIndexes

PROP = "_sap_accountid_value"
TABLE = "sap_erpaccount"


def _scan(rows: dict[str, dict[str, object]], value: object) -> list[dict[str, object]]:
    return [row for row in rows.values() if row.get(PROP) == value]


def test_random_writes_keep_the_index_equal_to_a_scan() -> None:
    rng = random.Random(7)
    rows: dict[str, dict[str, object]] = {}
    index = LookupIndexes()
    accounts = [f"a{n}" for n in range(5)] + [None]
    for step in range(2_000):
        action = rng.random()
        if action < 0.5 or not rows:
            row_id = f"r{step}"
            row = {"id": row_id, PROP: rng.choice(accounts)}
            rows[row_id] = row
            index.placed(TABLE, row_id, row, new_position=True)
        elif action < 0.8:
            row_id = rng.choice(list(rows))
            previous = rows[row_id]
            row = {**previous, PROP: rng.choice(accounts)}
            index.taken(TABLE, row_id, previous, gone=False)
            rows[row_id] = row  # an update keeps its place, as in a dict
            index.placed(TABLE, row_id, row, new_position=False)
        else:
            row_id = rng.choice(list(rows))
            index.taken(TABLE, row_id, rows.pop(row_id), gone=True)
        if step % 97 == 0:
            for value in accounts:
                assert index.rows_with(TABLE, PROP, value, rows) == _scan(rows, value)
    for value in accounts:
        assert index.rows_with(TABLE, PROP, value, rows) == _scan(rows, value)
    assert index.rows_with(TABLE, PROP, "nobody", rows) == []


def test_cleared_index_is_rebuilt_from_the_rows() -> None:
    rows = {"r1": {PROP: "a"}, "r2": {PROP: "b"}, "r3": {PROP: "a"}}
    index = LookupIndexes()
    assert index.rows_with(TABLE, PROP, "a", rows) == [rows["r1"], rows["r3"]]
    index.clear()
    rows.pop("r1")
    assert index.rows_with(TABLE, PROP, "a", rows) == [rows["r3"]]
