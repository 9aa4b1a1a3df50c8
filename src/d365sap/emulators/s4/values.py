"""Edm primitive values: checking what arrives in JSON, rendering what leaves as OData v2 JSON.

Internally a value is a plain Python object (``str``, ``bool``, ``int``, ``Decimal``,
``uuid.UUID``, naive UTC ``datetime`` for Edm.DateTime, aware ``datetime`` for
Edm.DateTimeOffset, ``timedelta`` for Edm.Time) so filters and sorting compare real values, not
strings. Conversions raise :class:`InvalidValueError`; callers turn it into SAP's error naming the
property.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from d365sap.emulators.s4.edm import Property

_EPOCH = datetime(1970, 1, 1)
_JSON_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?$"
)
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
INT_RANGES = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-32768, 32767),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
NUMERIC_TYPES = frozenset({*INT_RANGES, "Edm.Decimal", "Edm.Double", "Edm.Single"})


class InvalidValueError(ValueError):
    """A value that does not fit its property; ``kind`` is type, length, null or precision."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def parse_datetime_text(text: str, *, with_offset: bool) -> datetime:
    """ISO 8601 (``2026-11-27T09:00:00``) or JSON ``/Date(ms)/`` into a UTC datetime."""
    match = _JSON_DATE.match(text)
    if match:
        moment = _EPOCH + timedelta(milliseconds=int(match.group(1)))
        if match.group(2):
            sign = 1 if match.group(2)[0] == "+" else -1
            moment -= sign * timedelta(minutes=int(match.group(2)[1:]))
        return moment.replace(tzinfo=UTC) if with_offset else moment
    match = _ISO_DATE.match(text)
    if not match:
        raise InvalidValueError("type", f"'{text}' is not a valid date/time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    digits = (fraction or "").ljust(6, "0")[:6]
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(digits),
        )
    except ValueError as exc:
        raise InvalidValueError("type", f"'{text}' is not a valid date/time") from exc
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return moment.replace(tzinfo=UTC) if with_offset else moment


def parse_duration(text: str) -> timedelta:
    """``PT09H30M00S`` into a timedelta."""
    match = _DURATION.match(text)
    if not match or text == "PT":
        raise InvalidValueError("type", f"'{text}' is not a valid Edm.Time (PThhHmmMssS)")
    hours, minutes, seconds, fraction = match.groups()
    micro = int((fraction or "").ljust(6, "0")[:6])
    return timedelta(
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
        microseconds=micro,
    )


def _decimal(prop: Property, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidValueError("type", "a decimal number in a JSON string is expected")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise InvalidValueError("type", f"'{raw}' is not a decimal number") from exc
    if not value.is_finite():
        raise InvalidValueError("type", f"'{raw}' is not a decimal number")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = prop.scale or 0
    decimals = max(0, -exponent)
    integers = max(0, len(digits) + exponent)
    if decimals > scale or (prop.precision is not None and integers > prop.precision - scale):
        raise InvalidValueError(
            "precision", f"'{raw}' exceeds precision {prop.precision} and scale {scale}"
        )
    return value


def from_json(prop: Property, raw: Any) -> Any:
    """Check and convert one JSON value for ``prop``; None stays None when nullable."""
    if raw is None:
        if not prop.nullable:
            raise InvalidValueError("null", "the property must not be null")
        return None
    kind = prop.edm_type
    if kind == "Edm.String":
        if not isinstance(raw, str):
            raise InvalidValueError("type", "a JSON string is expected")
        if prop.max_length is not None and len(raw) > prop.max_length:
            raise InvalidValueError(
                "length", f"'{raw}' is longer than the maximum length of {prop.max_length}"
            )
        return raw
    if kind == "Edm.Boolean":
        if not isinstance(raw, bool):
            raise InvalidValueError("type", "JSON true or false is expected")
        return raw
    if kind in INT_RANGES:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise InvalidValueError("type", "an integer is expected")
        try:
            number = int(raw)
        except ValueError as exc:
            raise InvalidValueError("type", f"'{raw}' is not an integer") from exc
        low, high = INT_RANGES[kind]
        if not low <= number <= high:
            raise InvalidValueError("type", f"{number} is out of range for {kind}")
        return number
    if kind == "Edm.Decimal":
        return _decimal(prop, raw)
    if kind in ("Edm.Double", "Edm.Single"):
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise InvalidValueError("type", "a number is expected")
        try:
            return float(raw)
        except ValueError as exc:
            raise InvalidValueError("type", f"'{raw}' is not a number") from exc
    if not isinstance(raw, str):
        raise InvalidValueError("type", f"a JSON string in {kind} format is expected")
    if kind == "Edm.DateTime":
        return parse_datetime_text(raw, with_offset=False)
    if kind == "Edm.DateTimeOffset":
        return parse_datetime_text(raw, with_offset=True)
    if kind == "Edm.Time":
        return parse_duration(raw)
    if kind == "Edm.Guid":
        if not _GUID.match(raw):
            raise InvalidValueError("type", f"'{raw}' is not a GUID")
        return uuid.UUID(raw)
    raise InvalidValueError("type", f"type {kind} is not supported")


def _millis(moment: datetime) -> int:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return (naive - _EPOCH) // timedelta(milliseconds=1)


def format_duration(value: timedelta) -> str:
    """A timedelta as ``PT09H30M00S``."""
    total = int(value.total_seconds())
    return f"PT{total // 3600:02d}H{total % 3600 // 60:02d}M{total % 60:02d}S"


def to_json(prop: Property, value: Any) -> Any:
    """Render an internal value the way SAP's OData v2 JSON does."""
    if value is None:
        return None
    kind = prop.edm_type
    if kind == "Edm.DateTime":
        return f"/Date({_millis(value)})/"
    if kind == "Edm.DateTimeOffset":
        return f"/Date({_millis(value)}+0000)/"
    if kind == "Edm.Time":
        return format_duration(value)
    if kind == "Edm.Decimal":
        scale = prop.scale or 0
        return str(Decimal(value).quantize(Decimal(1).scaleb(-scale)))
    if kind in ("Edm.Guid", "Edm.Int64"):
        return str(value)
    return value


def _iso(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    text = (
        f"{naive.year:04d}-{naive.month:02d}-{naive.day:02d}"
        f"T{naive.hour:02d}:{naive.minute:02d}:{naive.second:02d}"
    )
    return text + (f".{naive.microsecond:06d}".rstrip("0") if naive.microsecond else "")


def key_literal(prop: Property, value: Any) -> str:
    """The URI literal of a key value, e.g. ``'17100001'`` or ``datetime'2026-01-01T00:00:00'``."""
    kind = prop.edm_type
    if kind == "Edm.String":
        return "'" + quote(str(value).replace("'", "''"), safe="") + "'"
    if kind == "Edm.Boolean":
        return "true" if value else "false"
    if kind == "Edm.DateTime":
        return "datetime'" + quote(_iso(value), safe="") + "'"
    if kind == "Edm.DateTimeOffset":
        return "datetimeoffset'" + quote(_iso(value) + "Z", safe="") + "'"
    if kind == "Edm.Time":
        return f"time'{format_duration(value)}'"
    if kind == "Edm.Guid":
        return f"guid'{value}'"
    if kind == "Edm.Decimal":
        return f"{value}M"
    if kind == "Edm.Int64":
        return f"{value}L"
    return str(value)
