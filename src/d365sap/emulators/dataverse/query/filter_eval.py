"""Evaluating a bound ``$filter`` against rows, with SQL's three-valued logic.

A comparison with a NULL column value is unknown (``None``) except ``eq null``/``ne null``,
which are ``IS NULL``/``IS NOT NULL``; ``not unknown`` stays unknown; ``and``/``or`` follow
Kleene logic. ``contains``/``startswith``/``endswith`` are SQL ``LIKE`` under the case- and
accent-insensitive collation, so ``%``, ``_`` and ``[…]`` in the pattern are wildcards, as
Microsoft documents for Dataverse.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from d365sap.emulators.dataverse.query import errors, functions
from d365sap.emulators.dataverse.query.filter_nodes import (
    Compare,
    Lambda,
    Literal,
    Logical,
    Member,
    Node,
    Not,
    QueryFunction,
    StringCall,
)
from d365sap.emulators.dataverse.query.types import NULL, QueryTable, RelatedRows, Row
from d365sap.emulators.dataverse.query.values import compare_type, normalize

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


@dataclass(frozen=True)
class EvalContext:
    """What evaluation needs besides the row: related rows for paths, the current time."""

    related: RelatedRows | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def matches(node: Node | None, row: Row, context: EvalContext | None = None) -> bool:
    """Whether ``row`` is returned by the filter (``None`` filter: every row)."""
    if node is None:
        return True
    return _evaluate(node, row, context or EvalContext(), {}) is True


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=256)
def like_pattern(pattern: str) -> re.Pattern[str]:
    """SQL ``LIKE`` pattern (``%``, ``_``, ``[set]``, ``[^set]``) as a compiled regex."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char == "[" and "]" in pattern[index + 2 :]:
            close = pattern.index("]", index + 2)
            body = pattern[index + 1 : close]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = re.escape(body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{escaped}]")
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out), re.DOTALL)


def _like(name: str, subject: str, pattern: str) -> bool:
    if name == "contains":
        pattern = f"%{pattern}%"
    elif name == "startswith":
        pattern = f"{pattern}%"
    else:
        pattern = f"%{pattern}"
    return like_pattern(_fold(pattern)).fullmatch(_fold(subject)) is not None


def _follow(
    context: EvalContext, steps: tuple[tuple[QueryTable, str], ...], row: Row | None
) -> Row | None:
    for table, navigation in steps:
        if row is None:
            return None
        if context.related is None:
            raise errors.not_implemented("Navigation paths in $filter need related rows.")
        row = context.related.one(table, navigation, row)
    return row


def _member(node: Member, row: Row, context: EvalContext, scope: Mapping[str, Row]) -> object:
    start = scope[node.variable] if node.variable else row
    target = _follow(context, node.steps, start)
    return None if target is None else target.get(node.name)


def _compare(node: Compare, row: Row, context: EvalContext, scope: Mapping[str, Row]) -> object:
    left = _evaluate(node.left, row, context, scope)
    right = _evaluate(node.right, row, context, scope)
    if NULL in (node.left.edm_type, node.right.edm_type):
        if node.op == "eq":
            return left is None and right is None
        if node.op == "ne":
            return (left is None) != (right is None)
        return None
    if left is None or right is None:
        return None
    common = compare_type(node.left.edm_type, node.right.edm_type)
    return _OPERATORS[node.op](normalize(left, common), normalize(right, common))


def _lambda(node: Lambda, row: Row, context: EvalContext, scope: Mapping[str, Row]) -> object:
    start = scope[node.variable] if node.variable else row
    if context.related is None:
        raise errors.not_implemented("any/all in $filter need related rows.")
    children = context.related.many(node.table, node.navigation, start)
    if node.predicate is None:
        return len(children) > 0
    predicate = node.predicate
    results = (
        _evaluate(predicate, row, context, {**scope, node.lambda_variable: child}) is True
        for child in children
    )
    return any(results) if node.op == "any" else all(results)


def _evaluate(node: Node, row: Row, context: EvalContext, scope: Mapping[str, Row]) -> object:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Member):
        return _member(node, row, context, scope)
    if isinstance(node, Compare):
        return _compare(node, row, context, scope)
    if isinstance(node, Logical):
        left = _evaluate(node.left, row, context, scope)
        right = _evaluate(node.right, row, context, scope)
        decisive = node.op == "or"  # True decides an "or", False decides an "and"
        if decisive in (left, right):
            return decisive
        return None if None in (left, right) else not decisive
    if isinstance(node, Not):
        value = _evaluate(node.operand, row, context, scope)
        return None if value is None else not value
    if isinstance(node, StringCall):
        subject = _evaluate(node.subject, row, context, scope)
        pattern = _evaluate(node.pattern, row, context, scope)
        if subject is None or pattern is None:
            return None
        return _like(node.name, str(subject), str(pattern))
    if isinstance(node, QueryFunction):
        value = _member(node.column, row, context, scope)
        return functions.evaluate(node, value, context.now)
    return _lambda(node, row, context, scope)
