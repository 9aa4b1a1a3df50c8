"""The $filter lexer: literal types, guids that start with a letter, strings, positions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from d365sap.emulators.dataverse.query import QueryError
from d365sap.emulators.dataverse.query.tokens import Tok, tokenize


def literal(text: str) -> tuple[object, str]:
    tokens = tokenize(text)
    assert [t.kind for t in tokens] == [Tok.LITERAL, Tok.END]
    return tokens[0].value, tokens[0].edm_type


@pytest.mark.parametrize(
    ("text", "value", "edm_type"),
    [
        ("42", 42, "Edm.Int32"),
        ("-7", -7, "Edm.Int32"),
        ("2147483648", 2147483648, "Edm.Int64"),
        ("99999999999999999999", Decimal("99999999999999999999"), "Edm.Decimal"),
        ("1.50", Decimal("1.50"), "Edm.Decimal"),
        ("1e3", 1000.0, "Edm.Double"),
        ("'it''s'", "it's", "Edm.String"),
        ("''", "", "Edm.String"),
        ("2024-05-01", date(2024, 5, 1), "Edm.Date"),
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "Edm.DateTimeOffset"),
        (
            "2024-05-01T10:30:00.1234567+02:00",
            datetime(2024, 5, 1, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
            "Edm.DateTimeOffset",
        ),
        ("2024-05-01T10:30Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "Edm.DateTimeOffset"),
    ],
)
def test_literal_types(text: str, value: object, edm_type: str) -> None:
    assert literal(text) == (value, edm_type)


def test_guid_is_recognised_even_when_it_starts_with_a_letter() -> None:
    value, edm_type = literal("d31ba648-c592-ed11-aad1-000d3a993550")
    assert edm_type == "Edm.Guid"
    assert value == uuid.UUID("d31ba648-c592-ed11-aad1-000d3a993550")


def test_names_aliases_punctuation_and_positions() -> None:
    tokens = tokenize("Microsoft.Dynamics.CRM.In(PropertyName=@p1, x/y:z)")
    kinds = [t.kind for t in tokens]
    assert kinds == [
        Tok.NAME,
        Tok.OPEN,
        Tok.NAME,
        Tok.EQUALS,
        Tok.ALIAS,
        Tok.COMMA,
        Tok.NAME,
        Tok.SLASH,
        Tok.NAME,
        Tok.COLON,
        Tok.NAME,
        Tok.CLOSE,
        Tok.END,
    ]
    assert tokens[0].text == "Microsoft.Dynamics.CRM.In"
    assert tokens[4].text == "@p1"
    assert tokens[4].position == 39


def test_array_token_keeps_raw_text_including_brackets_in_strings() -> None:
    tokens = tokenize('f(PropertyValues=["a]b","c"])')
    array = tokens[4]
    assert array.kind is Tok.ARRAY
    assert array.text == '["a]b","c"]'


def test_unterminated_string_reports_end_position_like_dataverse() -> None:
    with pytest.raises(QueryError) as caught:
        tokenize("lastname eq 'O'Bryan'")
    assert caught.value.status == 400
    assert caught.value.code == "0x80060888"
    assert caught.value.message == (
        "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    )


def test_invalid_character_is_named_with_its_position() -> None:
    with pytest.raises(QueryError) as caught:
        tokenize('name eq "x"')
    assert caught.value.message == (
        "Syntax error: character '\"' is not valid at position 8 in 'name eq \"x\"'."
    )


def test_invalid_date_is_refused() -> None:
    with pytest.raises(QueryError) as caught:
        tokenize("openedon eq 2024-13-45")
    assert "Unrecognized literal '2024-13-45' at position 12" in caught.value.message


def test_unterminated_array() -> None:
    with pytest.raises(QueryError) as caught:
        tokenize('f(x=["a"')
    assert "unterminated literal" in caught.value.message
