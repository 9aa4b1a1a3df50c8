"""The lexer of ``$filter`` and ``$orderby`` expressions (OData v4 URL conventions).

Literals are recognised here with their EDM type, so the parser can type-check a comparison
without looking at text again: ``'it''s'`` (string, ``''`` escapes a quote), ``42``
(``Edm.Int32``, ``Edm.Int64`` when it does not fit), ``1.5`` (``Edm.Decimal``), ``1e3``
(``Edm.Double``), bare guids, ``2024-05-01`` (``Edm.Date``) and
``2024-05-01T10:00:00Z`` (``Edm.DateTimeOffset``). A guid is tried before a name because a
guid may start with a letter (``d31ba648-…``). Positions are 0-based offsets into the text,
as the OData library reports them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from d365sap.emulators.dataverse.query import errors
from d365sap.emulators.dataverse.query.types import (
    DATE,
    DATETIMEOFFSET,
    DECIMAL,
    DOUBLE,
    GUID,
    INT32,
    INT64,
    STRING,
)

_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))?"
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_ALIAS = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_INT32_RANGE = range(-(2**31), 2**31)
_INT64_RANGE = range(-(2**63), 2**63)


class Tok(Enum):
    """Token kinds."""

    NAME = "name"
    ALIAS = "parameter alias"
    LITERAL = "literal"
    ARRAY = "array"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    EQUALS = "="
    SLASH = "/"
    COLON = ":"
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit; ``value``/``edm_type`` are set for literals."""

    kind: Tok
    text: str
    position: int
    value: object = None
    edm_type: str = ""


_PUNCTUATION = {
    "(": Tok.OPEN,
    ")": Tok.CLOSE,
    ",": Tok.COMMA,
    "=": Tok.EQUALS,
    "/": Tok.SLASH,
    ":": Tok.COLON,
}


def parse_datetime_literal(text: str) -> tuple[object, str]:
    """``2024-05-01`` → (date, Edm.Date); with a time → (aware datetime, Edm.DateTimeOffset)."""
    if "T" not in text:
        return date.fromisoformat(text), DATE
    head, dot, tail = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits; OData allows 7
        digits = re.match(r"\d+", tail)
        fraction = digits.group(0) if digits else ""
        text = f"{head}.{fraction[:6].ljust(6, '0')}{tail[len(fraction) :]}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")), DATETIMEOFFSET


def _number(text: str) -> tuple[object, str]:
    if "e" in text or "E" in text:
        return float(text), DOUBLE
    if "." in text:
        return Decimal(text), DECIMAL
    value = int(text)
    if value in _INT32_RANGE:
        return value, INT32
    if value in _INT64_RANGE:
        return value, INT64
    return Decimal(value), DECIMAL


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def fail_char(self) -> errors.QueryError:
        char = self.text[self.pos]
        return errors.syntax(f"Syntax error: character '{char}' is not valid", self.pos, self.text)

    def unterminated(self) -> errors.QueryError:
        return errors.syntax("There is an unterminated literal", len(self.text), self.text)

    def run(self) -> list[Token]:
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                self.tokens.append(Token(Tok.END, "", self.pos))
                return self.tokens
            self.tokens.append(self.next_token())

    def next_token(self) -> Token:
        text, start = self.text, self.pos
        char = text[start]
        if char == "'":
            return self.string()
        if char == "[":
            return self.array()
        if char in _PUNCTUATION:
            self.pos += 1
            return Token(_PUNCTUATION[char], char, start)
        for pattern, build in (
            (_GUID, lambda s: (uuid.UUID(s), GUID)),
            (_DATETIME, parse_datetime_literal),
            (_NUMBER, _number),
        ):
            match = pattern.match(text, start)
            if match and not _NAME_CHAR.match(text, match.end()):
                try:
                    value, edm_type = build(match.group(0))
                except ValueError:
                    raise errors.syntax(
                        f"Unrecognized literal '{match.group(0)}'", start, text
                    ) from None
                self.pos = match.end()
                return Token(Tok.LITERAL, match.group(0), start, value, edm_type)
        for pattern, kind in ((_ALIAS, Tok.ALIAS), (_NAME, Tok.NAME)):
            match = pattern.match(text, start)
            if match:
                self.pos = match.end()
                return Token(kind, match.group(0), start)
        raise self.fail_char()

    def string(self) -> Token:
        text, start = self.text, self.pos
        chars: list[str] = []
        index = start + 1
        while True:
            end = text.find("'", index)
            if end < 0:
                raise self.unterminated()
            chars.append(text[index:end])
            if text.startswith("''", end):
                chars.append("'")
                index = end + 2
                continue
            self.pos = end + 1
            return Token(Tok.LITERAL, text[start : self.pos], start, "".join(chars), STRING)

    def array(self) -> Token:
        """A JSON-style array (``["a","b"]``) kept raw; the parser reads its items.

        Only JSON (double-quoted) strings may hide a ``]``; an apostrophe means nothing here,
        so ``['O'Brian']`` reaches the array reader whole and is refused there, as on
        Dataverse.
        """
        text, start = self.text, self.pos
        depth, index, quoted = 0, start, False
        while index < len(text):
            char = text[index]
            if quoted:
                if char == "\\":
                    index += 1
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    self.pos = index + 1
                    return Token(Tok.ARRAY, text[start : self.pos], start)
            index += 1
        raise self.unterminated()


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``END`` token."""
    return _Lexer(text).run()
