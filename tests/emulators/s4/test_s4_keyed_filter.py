"""A filter that pins the whole key is answered by a key lookup with the same result as a scan."""

from __future__ import annotations

from emulators.s4.s4_support import S4

KEYED = (
    "Customer eq '17100002' and SalesOrganization eq '1710' and DistributionChannel eq '10' "
    "and Division eq '00'"
)


def results(s4: S4, flt: str) -> list[dict[str, object]]:
    response = s4.get("A_CustomerSalesArea", **{"$filter": flt, "$format": "json"})
    assert response.status_code == 200, response.text
    return list(response.json()["d"]["results"])


def test_whole_key_finds_the_row(s4: S4) -> None:
    rows = results(s4, KEYED)
    assert [(r["Customer"], r["SalesOrganization"]) for r in rows] == [("17100002", "1710")]


def test_whole_key_in_another_order_and_reversed_operands(s4: S4) -> None:
    flt = (
        "Division eq '00' and '10' eq DistributionChannel and SalesOrganization eq '1710' "
        "and Customer eq '17100002'"
    )
    assert len(results(s4, flt)) == 1


def test_extra_condition_still_applies(s4: S4) -> None:
    assert results(s4, KEYED + " and Currency eq 'XXX'") == []
    assert len(results(s4, KEYED + " and DeletionIndicator eq false")) == 1


def test_unknown_key_gives_no_row(s4: S4) -> None:
    assert results(s4, KEYED.replace("17100002", "17199999")) == []


def test_or_and_partial_keys_still_scan(s4: S4) -> None:
    either = results(s4, "Customer eq '17100002' or Customer eq '17100003'")
    assert {r["Customer"] for r in either} == {"17100002", "17100003"}
    partial = results(s4, "Customer eq '17100003' and SalesOrganization eq '1710'")
    assert len(partial) >= 1


def test_an_or_of_whole_keys_is_looked_up_key_by_key(s4: S4) -> None:
    other = KEYED.replace("17100002", "17100003")
    missing = KEYED.replace("17100002", "17199999")
    rows = results(s4, f"({other}) or ({missing}) or ({KEYED})")
    # key order, as a scan would give; the missing key simply finds nothing
    assert [r["Customer"] for r in rows] == ["17100002", "17100003"]
    assert results(s4, f"({KEYED}) or ({KEYED})") == results(s4, KEYED)


def test_an_or_of_whole_keys_still_applies_every_condition(s4: S4) -> None:
    other = KEYED.replace("17100002", "17100003")
    rows = results(s4, f"({other} and Currency eq 'XXX') or ({KEYED})")
    assert [r["Customer"] for r in rows] == ["17100002"]


def test_an_or_with_a_partial_key_scans_with_the_same_answer(s4: S4) -> None:
    rows = results(s4, f"({KEYED}) or (Customer eq '17100003')")
    assert {r["Customer"] for r in rows} == {"17100002", "17100003"}
