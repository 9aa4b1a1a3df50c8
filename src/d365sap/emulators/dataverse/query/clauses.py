"""``$select``, ``$orderby``, ``$top`` and ``$count``: the small query options.

Each is checked against the table, with the OData library's messages: an unknown column in
``$select`` or ``$orderby`` is "Could not find a property named …", a bad ``$top`` names the
value.
"""

from __future__ import annotations

from collections.abc import Mapping

from d365sap.emulators.dataverse.query import errors
from d365sap.emulators.dataverse.query.sorting import OrderBy
from d365sap.emulators.dataverse.query.tokens import Tok, tokenize
from d365sap.emulators.dataverse.query.types import QueryTable


def split_top_level(text: str, separator: str) -> list[tuple[int, str]]:
    """Pieces of ``text`` between ``separator`` outside parentheses and quoted strings, each
    with its offset."""
    pieces: list[tuple[int, str]] = []
    depth, start, quoted = 0, 0, False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted  # '' inside a string toggles twice: still inside
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == separator and depth == 0:
            pieces.append((start, text[start:index]))
            start = index + 1
    pieces.append((start, text[start:]))
    return pieces


def parse_select(text: str, table: QueryTable) -> tuple[str, ...] | None:
    """Selected column names in request order (``None``: all columns, ``*`` or empty)."""
    if not text.strip():
        return None
    names: list[str] = []
    for offset, piece in split_top_level(text, ","):
        name = piece.strip()
        if not name:
            raise errors.syntax("Syntax error", offset, text)
        if name == "*":
            return None
        if table.column(name) is None:
            if table.navigation(name) is not None:
                raise errors.odata(
                    f"The navigation property '{name}' cannot be used in $select; use "
                    f"$expand={name} or its lookup property."
                )
            raise errors.unknown_property(name, table)
        if name not in names:
            names.append(name)
    return tuple(names)


def _order_item(
    offset: int, piece: str, text: str, table: QueryTable, aliases: Mapping[str, str] | None
) -> OrderBy:
    tokens = tokenize(piece)
    first = tokens[0]
    if first.kind is Tok.ALIAS:
        if aliases is None:
            raise errors.odata(f"Parameter aliases ('{first.text}') cannot be used inside $expand.")
        value = aliases.get(first.text, "")
        resolved = tokenize(value)
        if len(resolved) != 2 or resolved[0].kind is not Tok.NAME:
            raise errors.odata(
                f"The parameter alias '{first.text}' used in $orderby must name a property."
            )
        first = resolved[0]
    if first.kind is not Tok.NAME:
        raise errors.syntax("Expression expected", offset + first.position, text)
    following = tokens[1]
    if following.kind is Tok.SLASH:
        raise errors.odata(
            f"$orderby on a property of a related table ('{first.text}/…') is not supported."
        )
    column = table.column(first.text)
    if column is None:
        raise errors.unknown_property(first.text, table)
    descending = False
    if following.kind is Tok.NAME and following.text in ("asc", "desc"):
        descending = following.text == "desc"
        following = tokens[2]
    if following.kind is not Tok.END:
        raise errors.syntax("Syntax error", offset + following.position, text)
    return OrderBy(first.text, column.edm_type, descending)


def parse_orderby(
    text: str, table: QueryTable, aliases: Mapping[str, str] | None = None
) -> tuple[OrderBy, ...]:
    """``name desc, revenue`` → order items (parameter aliases allowed outside $expand)."""
    items = []
    for offset, piece in split_top_level(text, ","):
        if not piece.strip():
            raise errors.syntax("Expression expected", offset, text)
        items.append(_order_item(offset, piece, text, table, aliases))
    return tuple(items)


def parse_top(text: str) -> int:
    """A non-negative ``$top``."""
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise errors.odata(
            f"Invalid value '{text}' for $top query option found. The $top query option "
            "requires a non-negative integer value."
        )
    return int(text)


def parse_count(text: str) -> bool:
    """``$count=true``/``false``."""
    if text not in ("true", "false"):
        raise errors.odata(f"'{text}' is not a valid count option.")
    return text == "true"
