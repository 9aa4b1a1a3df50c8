"""Tokenizer for OData v2 URI expressions: ``$filter`` and key predicates share it.

A real tokenizer (not regular expressions over the whole expression) is what keeps quoting
right: ``'O''Neil'`` is one string token, ``'a and b'`` is not an ``and`` operator, and every
token knows its position for SAP-style "at position N" messages.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from d365sap.emulators.s4.values import InvalidValueError, parse_datetime_text, parse_duration


class Tok(Enum):
    """Token kinds."""

    LITERAL = "literal"
    NAME = "name"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    SLASH = "/"
    EQUALS = "="
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token; literals carry their Python value and Edm type."""

    kind: Tok
    text: str
    position: int
    value: Any = None
    edm_type: str = ""


class ExpressionSyntaxError(ValueError):
    """The expression cannot be tokenized or parsed."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?([mMdDfFlL])?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_PUNCT = {"(": Tok.OPEN, ")": Tok.CLOSE, ",": Tok.COMMA, "/": Tok.SLASH, "=": Tok.EQUALS}
_TYPED_PREFIXES = ("datetimeoffset", "datetime", "guid", "time")


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The content of the quoted string opening at ``start`` and the index after it."""
    out: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "'":
            if index + 1 < len(text) and text[index + 1] == "'":
                out.append("'")
                index += 2
                continue
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise ExpressionSyntaxError(f"unterminated string literal at position {start}", start)


def _typed(prefix: str, content: str, position: int) -> tuple[Any, str]:
    try:
        if prefix == "datetime":
            return parse_datetime_text(content, with_offset=False), "Edm.DateTime"
        if prefix == "datetimeoffset":
            return parse_datetime_text(content, with_offset=True), "Edm.DateTimeOffset"
        if prefix == "time":
            return parse_duration(content), "Edm.Time"
        return uuid.UUID(content), "Edm.Guid"
    except (InvalidValueError, ValueError) as exc:
        raise ExpressionSyntaxError(f"invalid {prefix} literal '{content}'", position) from exc


def _number(text: str, position: int) -> Token:
    suffix = text[-1].lower() if text[-1].isalpha() else ""
    body = text[:-1] if suffix else text
    try:
        if suffix == "m":
            return Token(Tok.LITERAL, text, position, Decimal(body), "Edm.Decimal")
        if suffix in ("d", "f") or "." in body or "e" in body.lower():
            if suffix == "l":
                raise ExpressionSyntaxError(f"invalid Int64 literal '{text}'", position)
            return Token(Tok.LITERAL, text, position, Decimal(body), "Edm.Double")
        kind = "Edm.Int64" if suffix == "l" else "Edm.Int32"
        return Token(Tok.LITERAL, text, position, int(body), kind)
    except (InvalidOperation, ValueError) as exc:
        raise ExpressionSyntaxError(f"invalid number '{text}'", position) from exc


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with a :attr:`Tok.END` token."""
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in _PUNCT:
            tokens.append(Token(_PUNCT[char], char, index))
            index += 1
            continue
        if char == "'":
            value, end = _quoted(text, index)
            tokens.append(Token(Tok.LITERAL, text[index:end], index, value, "Edm.String"))
            index = end
            continue
        number = _NUMBER.match(text, index)
        if number and (char.isdigit() or char == "-"):
            tokens.append(_number(number.group(0), index))
            index = number.end()
            continue
        name = _NAME.match(text, index)
        if not name:
            raise ExpressionSyntaxError(f"unexpected character '{char}' at position {index}", index)
        word = name.group(0)
        end = name.end()
        if word.lower() in _TYPED_PREFIXES and end < len(text) and text[end] == "'":
            content, after = _quoted(text, end)
            value, edm_type = _typed(word.lower(), content, index)
            tokens.append(Token(Tok.LITERAL, text[index:after], index, value, edm_type))
            index = after
            continue
        if word in ("true", "false"):
            tokens.append(Token(Tok.LITERAL, word, index, word == "true", "Edm.Boolean"))
        elif word == "null":
            tokens.append(Token(Tok.LITERAL, word, index, None, "null"))
        else:
            tokens.append(Token(Tok.NAME, word, index))
        index = end
    tokens.append(Token(Tok.END, "", len(text)))
    return tokens
