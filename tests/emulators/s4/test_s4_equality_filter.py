"""A filter on a string property's value narrows through the store's index; same answer as a scan.

``P eq 'v' or P eq 'v'`` means the same as ``P eq 'v'`` but takes no shortcut: it scans.
"""

from __future__ import annotations

from emulators.s4.s4_support import S4


def results(s4: S4, entity_set: str, flt: str, **extra: str) -> list[dict[str, object]]:
    response = s4.get(entity_set, **{"$filter": flt, "$format": "json", **extra})
    assert response.status_code == 200, response.text
    return list(response.json()["d"]["results"])


def _same_as_scan(s4: S4, entity_set: str, prop: str, value: str, rest: str = "") -> list:
    indexed = results(s4, entity_set, f"{prop} eq '{value}'{rest}")
    scanned = results(s4, entity_set, f"({prop} eq '{value}' or {prop} eq '{value}'){rest}")
    assert indexed == scanned
    return indexed


def test_a_non_key_equality_gives_the_rows_of_a_scan_in_key_order(s4: S4) -> None:
    rows = _same_as_scan(s4, "A_CustomerSalesArea", "SalesOrganization", "1710")
    assert len(rows) >= 2
    keys = [(r["Customer"], r["DistributionChannel"], r["Division"]) for r in rows]
    assert keys == sorted(keys)
    assert _same_as_scan(s4, "A_CustomerSalesArea", "SalesOrganization", "nowhere") == []


def test_other_conditions_still_apply(s4: S4) -> None:
    all_rows = _same_as_scan(s4, "A_CustomerSalesArea", "SalesOrganization", "1710")
    one = all_rows[0]["Customer"]
    narrowed = _same_as_scan(
        s4, "A_CustomerSalesArea", "SalesOrganization", "1710", f" and Customer eq '{one}'"
    )
    assert narrowed and {r["Customer"] for r in narrowed} == {one}


def test_a_created_partner_is_found_by_its_external_reference(s4: S4) -> None:
    created = s4.send(
        "POST",
        "A_BusinessPartner",
        {
            "BusinessPartnerCategory": "2",
            "OrganizationBPName1": "Index Test GmbH",
            "BusinessPartnerIDByExtSystem": "IDX-0001",
        },
    )
    assert created.status_code == 201, created.text
    number = created.json()["d"]["BusinessPartner"]
    found = _same_as_scan(s4, "A_BusinessPartner", "BusinessPartnerIDByExtSystem", "IDX-0001")
    assert [r["BusinessPartner"] for r in found] == [number]
    counted = results(
        s4,
        "A_BusinessPartner",
        "BusinessPartnerIDByExtSystem eq 'IDX-0001'",
        **{"$inlinecount": "allpages"},
    )
    assert len(counted) == 1
