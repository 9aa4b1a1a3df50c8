"""How Dataverse compares values: SQL Server semantics, not Python's.

- Strings compare under the organisation's default collation (``Latin1_General_CI_AI``):
  case- and accent-insensitive, and ``=`` ignores trailing spaces.
- Guids (``uniqueidentifier``) order by SQL Server's byte order, last group first; equality
  is case-insensitive whatever the spelling.
- A datetime without an offset is UTC; an ``Edm.Date`` literal compared with an
  ``Edm.DateTimeOffset`` column means midnight UTC that day.
- NULL sorts before every value ascending and after every value descending.

Everything that sorts or compares rows (``$filter``, ``$orderby``, the paging seek, query
functions) goes through :func:`normalize`, so they all agree.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

from d365sap.emulators.dataverse.query.types import (
    BOOLEAN,
    DATE,
    DATETIMEOFFSET,
    GUID,
    NUMERIC_TYPES,
    STRING,
)

# SQL Server compares the 16 bytes of a uniqueidentifier (in .NET ``ToByteArray`` order)
# in this sequence: the node bytes first, the time-low bytes last.
_SQL_GUID_ORDER = (10, 11, 12, 13, 14, 15, 8, 9, 6, 7, 4, 5, 0, 1, 2, 3)


def collation_key(text: str) -> str:
    """Case- and accent-insensitive form of ``text``, trailing spaces ignored (CI_AI)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold().rstrip(" ")


def as_uuid(value: object) -> uuid.UUID:
    """A guid value (``UUID`` or its text, braces allowed) as ``UUID``."""
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value).strip().strip("{}"))


def guid_key(value: object) -> bytes:
    """Sort key of a guid in SQL Server's ``uniqueidentifier`` order."""
    raw = as_uuid(value).bytes_le
    return bytes(raw[index] for index in _SQL_GUID_ORDER)


def as_datetime(value: object) -> datetime:
    """An aware datetime: naive means UTC, a plain date means midnight UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    return as_datetime(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def as_date(value: object) -> date:
    """The calendar date (UTC) of a date or datetime value."""
    if isinstance(value, datetime):
        return as_datetime(value).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def normalize(value: object, edm_type: str) -> object:
    """The comparable form of a non-null ``value`` of ``edm_type``.

    Two values compare (``==``, ``<``) like SQL Server compares them once both went through
    this function with the same (or a promotable) type.
    """
    if edm_type == STRING:
        return collation_key(str(value))
    if edm_type == GUID:
        return guid_key(value)
    if edm_type == DATETIMEOFFSET:
        return as_datetime(value)
    if edm_type == DATE:
        return as_date(value)
    if edm_type == BOOLEAN:
        return bool(value)
    if edm_type in NUMERIC_TYPES:
        if isinstance(value, bool):
            return int(value)
        if not isinstance(value, int | float | Decimal):
            return Decimal(str(value))
        return value
    return value


def compare_type(left: str, right: str) -> str:
    """The type both sides are normalized to (the column's type wins over a literal's)."""
    if DATETIMEOFFSET in (left, right):
        return DATETIMEOFFSET
    return left
