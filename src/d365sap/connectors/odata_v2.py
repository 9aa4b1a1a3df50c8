"""OData v2 URL pieces: literals, key predicates and ``$filter`` expressions.

Every value that reaches a URL is escaped here (D1, D9 of the package): a ``'`` in a customer
number can neither break the request nor change its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote


def string_literal(value: str) -> str:
    """An Edm.String literal: quoted, with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def key_predicate(keys: Mapping[str, str]) -> str:
    """``(Name='value',…)`` for a URL path, literal content percent-encoded."""
    parts = []
    for name, value in keys.items():
        escaped = value.replace("'", "''")
        parts.append(f"{name}='{quote(escaped, safe='')}'")
    return "(" + ",".join(parts) + ")"


def entity_path(entity_set: str, keys: Mapping[str, str]) -> str:
    """``EntitySet(Key='…',…)``."""
    return entity_set + key_predicate(keys)


def eq_filter(values: Mapping[str, str]) -> str:
    """``A eq 'x' and B eq 'y'`` (the query string encoding is left to the HTTP client)."""
    return " and ".join(f"{name} eq {string_literal(value)}" for name, value in values.items())


def any_eq_filter(alternatives: Sequence[Mapping[str, str]]) -> str:
    """``(A eq 'x' and B eq 'y') or (A eq 'z' and B eq 'w')``: matches any of the alternatives."""
    if len(alternatives) == 1:
        return eq_filter(alternatives[0])
    return " or ".join(f"({eq_filter(values)})" for values in alternatives)
