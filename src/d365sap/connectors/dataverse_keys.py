"""Paths and query strings of the Dataverse Web API, built from typed values.

A row is addressed by its primary key (a GUID: ``accounts(3c9e…)``) or by an alternate key's
values (``sap_linkederporgs(sap_erpsystemtype=100000000,sap_vkorg='1710',…)``). Values become
OData v4 literals here, once: strings quoted with ``''`` for a quote, GUIDs (``uuid.UUID``)
bare, integers and booleans as written. The predicate is then percent-encoded as one path
segment, so a ``/`` or ``#`` inside a value stays inside it. Bad input raises
:class:`~d365sap.errors.ValidationError` naming what is wrong.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from d365sap.errors import ValidationError

KeyValue = str | int | bool | uuid.UUID
"""A value of an alternate key column; a lookup column takes a ``uuid.UUID``."""
RowKey = str | uuid.UUID | Mapping[str, KeyValue]
"""A primary key (GUID, as text or ``uuid.UUID``) or an alternate key's column values."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WEAK_ETAG = re.compile(r'^W/"(?P<version>[^"]*)"$')
# Characters left as they are in a key predicate and in query option values: OData's own
# syntax. Everything else (space, '/', '#', '&', '+', '%', non-ASCII) is percent-encoded.
_PREDICATE_SAFE = "=,'()-._~:@!$*"
_QUERY_SAFE = "=,'()-._~:@!$*/"


def check_name(value: str, field: str) -> str:
    """An entity set, column or navigation name; refused unless it is a plain identifier."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(field, f"{value!r} is not an entity set or column name")
    return value


def guid(value: str | uuid.UUID, field: str = "id") -> str:
    """A row id in Dataverse's form (lower case); refused unless it is a GUID."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str) or not _GUID.match(value.strip()):
        raise ValidationError(field, f"{value!r} is not a GUID")
    return value.strip().lower()


def literal(value: KeyValue, field: str) -> str:
    """``value`` as an OData v4 literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        if value == "":
            raise ValidationError(field, "an alternate key value must not be empty")
        return "'" + value.replace("'", "''") + "'"
    raise ValidationError(field, f"{type(value).__name__} is not a key value type")


def key_predicate(key: RowKey) -> str:
    """The text between the parentheses of a row's path, not yet percent-encoded."""
    if isinstance(key, str | uuid.UUID):
        return guid(key, "key")
    if not isinstance(key, Mapping) or not key:
        raise ValidationError("key", "a GUID or a non-empty mapping of key columns is needed")
    parts = []
    for name, value in key.items():
        check_name(name, f"key.{name}")
        parts.append(f"{name}={literal(value, f'key.{name}')}")
    return ",".join(parts)


def row_path(entity_set: str, key: RowKey) -> str:
    """``entity_set(key)``, percent-encoded, relative to the service root."""
    check_name(entity_set, "entity_set")
    return f"{entity_set}({quote(key_predicate(key), safe=_PREDICATE_SAFE)})"


def query_string(options: Iterable[tuple[str, str]]) -> str:
    """``$select=a,b&$filter=…`` with the values percent-encoded (names are OData's own)."""
    return "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in options)


def columns(names: Iterable[str] | None, field: str) -> str | None:
    """A ``$select``/``$orderby`` list checked name by name, or ``None`` for no list."""
    if names is None:
        return None
    if isinstance(names, str):
        raise ValidationError(field, "a list of column names is needed, not one string")
    checked = [check_name(name, f"{field}[{index}]") for index, name in enumerate(names)]
    if not checked:
        raise ValidationError(field, "an empty list selects nothing")
    return ",".join(checked)


def etag_version(etag: str | None) -> str | None:
    """The row version inside a weak ETag (``W/"915244"`` → ``"915244"``)."""
    if not etag:
        return None
    match = _WEAK_ETAG.match(etag.strip())
    return match.group("version") if match else etag.strip()
