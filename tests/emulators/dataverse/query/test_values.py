"""SQL Server comparison semantics the query language relies on."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from d365sap.emulators.dataverse.query.values import (
    as_date,
    as_datetime,
    collation_key,
    guid_key,
    normalize,
)


def test_collation_is_case_accent_insensitive_and_pads_trailing_spaces() -> None:
    assert collation_key("Ümlaut Café  ") == collation_key("umlaut cafe")
    assert collation_key(" a") != collation_key("a")  # leading spaces count
    assert collation_key("Straße") == collation_key("STRASSE")


def test_guid_order_compares_the_last_group_first() -> None:
    ordered = [
        uuid.UUID("00000000-0000-0000-0000-000000000001"),
        uuid.UUID("ffffffff-ffff-ffff-0000-000000000001"),  # bytes 8-9 rank after the node
        uuid.UUID("00000000-0000-0000-0001-000000000001"),
        uuid.UUID("00000000-0000-0000-0000-000000000002"),
    ]
    assert sorted(ordered, key=guid_key) == ordered
    assert guid_key("{00000000-0000-0000-0000-0000000000AB}") == guid_key(uuid.UUID(int=0xAB))


def test_datetimes_naive_is_utc_and_dates_are_midnight() -> None:
    plus_two = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert as_datetime(plus_two) == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert as_datetime(datetime(2024, 1, 1, 10, 0)) == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert as_datetime(date(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)
    assert as_datetime("2024-01-01T10:00:00Z") == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert as_date(datetime(2024, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-2)))) == date(
        2024, 1, 2
    )
    assert as_date("2024-03-05T10:00:00Z") == date(2024, 3, 5)


def test_normalize_numbers_and_booleans() -> None:
    assert normalize("1.50", "Edm.Decimal") == Decimal("1.50")
    assert normalize(3, "Edm.Int32") == 3
    assert normalize(True, "Edm.Int32") == 1
    assert normalize(1, "Edm.Boolean") is True
    assert normalize(date(2024, 1, 2), "Edm.DateTimeOffset") == datetime(2024, 1, 2, tzinfo=UTC)
