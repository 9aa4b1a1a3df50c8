"""The DEBMAS07 XSD check of dry runs: root and extension normalised, the rest strict."""

from __future__ import annotations

import pytest

from d365sap.mapping.idoc_schema import validate_debmas
from support.examples import example

GOLDEN = [
    "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccounts.xml",
    "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccountdetails.xml",
]
ACCOUNTS = example(GOLDEN[0])


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_idocs_are_valid_although_cimtyp_differs_from_the_xsd(name: str) -> None:
    assert b"<CIMTYP>ZZ_DEBMAS_WILO360</CIMTYP>" in example(name)
    assert validate_debmas(example(name)) == []


def test_another_root_name_is_accepted() -> None:
    renamed = ACCOUNTS.replace(b"ZZ_DEBMAS>", b"DEBMAS07>")
    assert renamed.count(b"DEBMAS07>") == 2
    assert validate_debmas(renamed) == []


def test_field_too_long_names_segment_and_field() -> None:
    long_name = ACCOUNTS.replace(
        b"<NAME1>Muster Pumpentechnik GmbH</NAME1>", b"<NAME1>" + b"x" * 36 + b"</NAME1>"
    )
    [problem] = validate_debmas(long_name)
    assert problem.field == "E1KNA1M-NAME1"
    assert "35" in problem.message


def test_cimtyp_is_held_to_sap_s_length() -> None:
    long_cimtyp = ACCOUNTS.replace(
        b"<CIMTYP>ZZ_DEBMAS_WILO360</CIMTYP>", b"<CIMTYP>" + b"Z" * 31 + b"</CIMTYP>"
    )
    [problem] = validate_debmas(long_cimtyp)
    assert problem.field == "EDI_DC40-CIMTYP"


def test_order_and_missing_control_fields_are_reported() -> None:
    broken = ACCOUNTS.replace(b"<TABNAM>EDI_DC40</TABNAM>", b"")
    [problem] = validate_debmas(broken)
    assert problem.field == "EDI_DC40-DIRECT"
    assert "TABNAM" in problem.message


def test_each_idoc_of_a_document_is_checked() -> None:
    start, end = ACCOUNTS.index(b"<IDOC"), ACCOUNTS.index(b"</IDOC>") + len(b"</IDOC>")
    idoc = ACCOUNTS[start:end]
    second = idoc.replace(b"<DIRECT>2</DIRECT>", b"<DIRECT>22</DIRECT>")
    document = ACCOUNTS[:end] + second + ACCOUNTS[end:]
    problems = validate_debmas(document)
    assert [p.field for p in problems] == ["EDI_DC40-DIRECT"]
    assert problems[0].message.startswith("IDOC 2: ")


def test_unreadable_documents() -> None:
    assert validate_debmas(b"<ZZ_DEBMAS>")[0].field == "IDoc"
    assert validate_debmas(b"<ZZ_DEBMAS/>")[0].message == "no IDOC"
