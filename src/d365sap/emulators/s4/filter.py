"""``$filter``: a recursive-descent parser bound to the entity type, and its evaluator.

Binding happens while parsing, so an unknown property or a literal of the wrong type is rejected
before any data is touched, as SAP Gateway does. Grammar (OData v2 subset)::

    or      := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | compare
    compare := operand (("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand)?
    operand := "(" or ")" | literal | function "(" args ")" | property
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from d365sap.emulators.s4.edm import EntitySet
from d365sap.emulators.s4.literals import ExpressionSyntaxError, Tok, Token, tokenize
from d365sap.emulators.s4.values import NUMERIC_TYPES

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "substringof": (("Edm.String", "Edm.String"), "Edm.Boolean"),
    "startswith": (("Edm.String", "Edm.String"), "Edm.Boolean"),
    "endswith": (("Edm.String", "Edm.String"), "Edm.Boolean"),
    "tolower": (("Edm.String",), "Edm.String"),
    "toupper": (("Edm.String",), "Edm.String"),
    "trim": (("Edm.String",), "Edm.String"),
    "length": (("Edm.String",), "Edm.Int32"),
}


class FilterError(ValueError):
    """A ``$filter`` SAP would refuse; ``prop`` names the property when one is at fault."""

    def __init__(self, message: str, prop: str = "") -> None:
        super().__init__(message)
        self.prop = prop


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant."""

    value: Any
    edm_type: str


@dataclass(frozen=True, slots=True)
class PropertyRef:
    """A property of the filtered entity."""

    name: str
    edm_type: str


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call."""

    name: str
    args: tuple[Node, ...]
    edm_type: str


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    op: str
    left: Node
    right: Node
    edm_type: str = "Edm.Boolean"


@dataclass(frozen=True, slots=True)
class Logical:
    """``and`` / ``or`` / ``not`` (``right`` is None for ``not``)."""

    op: str
    left: Node
    right: Node | None
    edm_type: str = "Edm.Boolean"


Node = Literal | PropertyRef | Call | Compare | Logical


def _family(edm_type: str) -> str:
    if edm_type in NUMERIC_TYPES:
        return "number"
    if edm_type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return "datetime"
    return edm_type


def _prop_name(node: Node) -> str:
    return node.name if isinstance(node, PropertyRef) else ""


class _Parser:
    def __init__(self, text: str, entity_set: EntitySet) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.entity_set = entity_set

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token.kind is Tok.NAME and token.text in words:
            self.index += 1
            return token.text
        return None

    def expect(self, kind: Tok) -> Token:
        token = self.take()
        if token.kind is not kind:
            found = token.text or "end of expression"
            raise ExpressionSyntaxError(
                f"'{kind.value}' expected at position {token.position}, found '{found}'",
                token.position,
            )
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        token = self.peek()
        if token.kind is not Tok.END:
            raise ExpressionSyntaxError(
                f"unexpected '{token.text}' at position {token.position}", token.position
            )
        self.require_boolean(node)
        return node

    def require_boolean(self, node: Node) -> None:
        if node.edm_type != "Edm.Boolean":
            raise FilterError("a Boolean expression is expected in $filter", _prop_name(node))

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.keyword("or"):
            right = self.parse_and()
            self.require_boolean(node)
            self.require_boolean(right)
            node = Logical("or", node, right)
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.keyword("and"):
            right = self.parse_unary()
            self.require_boolean(node)
            self.require_boolean(right)
            node = Logical("and", node, right)
        return node

    def parse_unary(self) -> Node:
        if self.keyword("not"):
            operand = self.parse_unary()
            self.require_boolean(operand)
            return Logical("not", operand, None)
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_operand()
        op = self.keyword(*_COMPARISONS)
        if op is None:
            return left
        right = self.parse_operand()
        return Compare(op, *self.bind(op, left, right))

    def bind(self, op: str, left: Node, right: Node) -> tuple[Node, Node]:
        """Type-check a comparison and widen numeric literals to the property's domain."""
        lt, rt = left.edm_type, right.edm_type
        if "null" in (lt, rt):
            if op not in ("eq", "ne"):
                raise FilterError(f"null cannot be used with '{op}'", _prop_name(left))
            return left, right
        if _family(lt) != _family(rt):
            name = _prop_name(left) or _prop_name(right)
            raise FilterError(
                f"incompatible types {lt} and {rt} in '{op}' comparison"
                + (f" on property '{name}'" if name else ""),
                name,
            )
        if op not in ("eq", "ne") and lt in ("Edm.Boolean", "Edm.Guid"):
            raise FilterError(f"'{op}' is not defined for {lt}", _prop_name(left))
        return left, right

    def parse_operand(self) -> Node:
        token = self.take()
        if token.kind is Tok.OPEN:
            node = self.parse_or()
            self.expect(Tok.CLOSE)
            return node
        if token.kind is Tok.LITERAL:
            return Literal(token.value, token.edm_type)
        if token.kind is not Tok.NAME:
            found = token.text or "end of expression"
            raise ExpressionSyntaxError(
                f"operand expected at position {token.position}, found '{found}'",
                token.position,
            )
        if self.peek().kind is Tok.OPEN:
            return self.parse_call(token)
        if self.peek().kind is Tok.SLASH:
            raise FilterError(
                f"navigation paths ('{token.text}/...') are not supported in $filter",
                token.text,
            )
        prop = self.entity_set.properties.get(token.text)
        if prop is None:
            raise FilterError(
                f"Property '{token.text}' not found in type '{self.entity_set.type_name}'",
                token.text,
            )
        return PropertyRef(prop.name, prop.edm_type)

    def parse_call(self, name: Token) -> Node:
        signature = _FUNCTIONS.get(name.text)
        if signature is None:
            raise FilterError(f"function '{name.text}' is not supported in $filter")
        self.expect(Tok.OPEN)
        args: list[Node] = []
        if self.peek().kind is not Tok.CLOSE:
            args.append(self.parse_or())
            while self.peek().kind is Tok.COMMA:
                self.take()
                args.append(self.parse_or())
        self.expect(Tok.CLOSE)
        expected, result = signature
        if len(args) != len(expected) or any(
            a.edm_type != t for a, t in zip(args, expected, strict=False)
        ):
            raise FilterError(
                f"function '{name.text}' expects {len(expected)} argument(s) of type "
                f"{', '.join(expected)}",
                next((_prop_name(a) for a in args if _prop_name(a)), ""),
            )
        return Call(name.text, tuple(args), result)


def parse_filter(text: str, entity_set: EntitySet) -> Node:
    """Parse and bind ``text``; raises :class:`FilterError` or ``ExpressionSyntaxError``."""
    return _Parser(text, entity_set).parse()


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    both_dates = isinstance(left, datetime) and isinstance(right, datetime)
    if both_dates and (left.tzinfo is None) != (right.tzinfo is None):
        return left.replace(tzinfo=None), right.replace(tzinfo=None)
    if isinstance(left, float) and isinstance(right, Decimal):
        return Decimal(str(left)), right
    if isinstance(right, float) and isinstance(left, Decimal):
        return left, Decimal(str(right))
    return left, right


def _call(name: str, args: list[Any]) -> Any:
    if any(a is None for a in args):
        return False if name in ("substringof", "startswith", "endswith") else None
    if name == "substringof":
        return str(args[0]) in str(args[1])
    if name == "startswith":
        return str(args[0]).startswith(str(args[1]))
    if name == "endswith":
        return str(args[0]).endswith(str(args[1]))
    if name == "tolower":
        return str(args[0]).lower()
    if name == "toupper":
        return str(args[0]).upper()
    if name == "trim":
        return str(args[0]).strip()
    return len(str(args[0]))


def evaluate(node: Node, row: Mapping[str, Any]) -> Any:
    """Value of ``node`` for ``row`` (comparisons with null: only eq/ne can be true)."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, PropertyRef):
        return row.get(node.name)
    if isinstance(node, Call):
        return _call(node.name, [evaluate(a, row) for a in node.args])
    if isinstance(node, Compare):
        left, right = evaluate(node.left, row), evaluate(node.right, row)
        if left is None or right is None:
            if node.op == "eq":
                return left is None and right is None
            if node.op == "ne":
                return (left is None) != (right is None)
            return False
        return _COMPARISONS[node.op](*_comparable(left, right))
    if node.right is None:
        return not evaluate(node.left, row)
    if node.op == "and":
        return bool(evaluate(node.left, row)) and bool(evaluate(node.right, row))
    return bool(evaluate(node.left, row)) or bool(evaluate(node.right, row))


def key_from_filter(node: Node, entity_set: EntitySet) -> tuple[Any, ...] | None:
    """The key a filter pins down, when it is ``K1 eq 'a' and K2 eq 'b' …`` over a string key.

    Only conjunctions of equality on every key property qualify; anything else (``or``, ``not``,
    functions, other types) returns ``None`` and the caller scans as usual.
    """
    found: dict[str, Any] = {}

    def collect(current: Node) -> bool:
        if isinstance(current, Logical):
            return (
                current.op == "and"
                and current.right is not None
                and collect(current.left)
                and collect(current.right)
            )
        if not isinstance(current, Compare) or current.op != "eq":
            return True  # an extra condition: still a key lookup, the row is filtered after
        left, right = current.left, current.right
        if isinstance(left, Literal) and isinstance(right, PropertyRef):
            left, right = right, left
        if (
            isinstance(left, PropertyRef)
            and isinstance(right, Literal)
            and left.name in entity_set.keys
            and isinstance(right.value, str)
        ):
            found[left.name] = right.value
        return True

    if not collect(node) or set(found) != set(entity_set.keys):
        return None
    return tuple(found[name] for name in entity_set.keys)


def keys_from_filter(node: Node, entity_set: EntitySet) -> list[tuple[Any, ...]] | None:
    """The keys a filter pins down when it is one key condition or an ``or`` of them.

    ``(K1 eq 'a' and K2 eq 'b') or (K1 eq 'c' and K2 eq 'd')`` names two keys; a filter with
    any other shape returns ``None`` (see :func:`key_from_filter`).
    """
    if isinstance(node, Logical) and node.op == "or" and node.right is not None:
        left = keys_from_filter(node.left, entity_set)
        right = keys_from_filter(node.right, entity_set) if left is not None else None
        return None if left is None or right is None else left + right
    key = key_from_filter(node, entity_set)
    return None if key is None else [key]


def equalities_from_filter(node: Node, entity_set: EntitySet) -> dict[str, str]:
    """``Prop eq 'text'`` conditions on string properties that every match must satisfy.

    Only the top-level conjunction is looked at (``a and b and …``); a condition under ``or``
    or ``not`` contributes nothing. A caller may narrow the rows to those holding one of these
    values before evaluating the whole filter: the answer is the same.
    """
    found: dict[str, str] = {}

    def collect(current: Node) -> None:
        if isinstance(current, Logical):
            if current.op == "and" and current.right is not None:
                collect(current.left)
                collect(current.right)
            return
        if not isinstance(current, Compare) or current.op != "eq":
            return
        left, right = current.left, current.right
        if isinstance(left, Literal) and isinstance(right, PropertyRef):
            left, right = right, left
        if not (isinstance(left, PropertyRef) and isinstance(right, Literal)):
            return
        prop = entity_set.properties.get(left.name)
        if prop is not None and prop.edm_type == "Edm.String" and isinstance(right.value, str):
            found.setdefault(left.name, right.value)

    collect(node)
    return found
