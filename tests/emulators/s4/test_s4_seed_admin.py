"""Seed data (packaged and custom, validated against the EDMX) and the /emulator routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.s4.journal import Journal
from d365sap.emulators.s4.seed import SeedError
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import serving
from emulators.s4.s4_support import S4, sales_area_path


def test_packaged_seed_has_the_demo_customers(s4: S4) -> None:
    partner = s4.get("A_BusinessPartner('17100001')", **{"$expand": "to_BusinessPartnerAddress"})
    entity = partner.json()["d"]
    assert entity["BusinessPartnerName"] == "Inlandskunde US 1"
    assert entity["to_BusinessPartnerAddress"]["results"][0]["Country"] == "US"
    assert s4.get("A_Customer('17100001')").json()["d"]["CustomerName"] == "Inlandskunde US 1"
    assert s4.get(sales_area_path("17100001")).status_code == 404
    area = s4.get(sales_area_path("17100002"), **{"$expand": "to_SalesAreaTax"}).json()["d"]
    taxes = [
        (t["DepartureCountry"], t["CustomerTaxCategory"])
        for t in area["to_SalesAreaTax"]["results"]
    ]
    assert taxes == [("US", "UTXJ")]
    partners = s4.get("A_BusinessPartner", **{"$inlinecount": "allpages", "$top": "0"})
    assert int(partners.json()["d"]["__count"]) >= 4


def test_reset_restores_the_seed_and_clears_the_journal(s4: S4) -> None:
    s4.send("PATCH", sales_area_path("17100002"), {"SalesGroup": "171"})
    s4.send("POST", "A_BusinessPartner", {"BusinessPartnerCategory": "2"})
    assert len(s4.admin("GET", "requests").json()["requests"]) == 2
    reset = s4.admin("POST", "reset")
    assert reset.json()["entities"]["A_BusinessPartner"] == 5
    assert s4.get(sales_area_path("17100002")).json()["d"]["SalesGroup"] == "170"
    assert s4.get("A_BusinessPartner('1000000')").status_code == 404
    assert s4.admin("GET", "requests").json()["requests"] == []


def test_journal_shows_method_path_query_headers_and_body(s4: S4) -> None:
    etag = s4.get(sales_area_path("17100002")).headers["etag"]
    s4.send(
        "PATCH",
        sales_area_path("17100002") + "?sap-client=100",
        {"SalesGroup": "171"},
        headers={"If-Match": etag},
    )
    s4.get("A_Customer")
    entries = s4.admin("GET", "requests").json()["requests"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "PATCH"
    assert entry["path"] == sales_area_path("17100002")
    assert entry["query"] == {"sap-client": "100"}
    assert entry["headers"]["if-match"] == etag
    assert entry["headers"]["x-csrf-token"] == s4.token
    assert entry["body"] == {"SalesGroup": "171"}
    assert (entry["status"], entry["user"], entry["in_batch"]) == (204, "S4_COMM_USER", False)
    assert s4.admin("DELETE", "requests").status_code == 204
    assert s4.admin("GET", "requests").json()["requests"] == []


def test_journal_keeps_the_newest_entries() -> None:
    journal = Journal(2)
    for number in range(3):
        journal.record(
            method="POST", path=str(number), query="", headers={}, body=b"x", status=201, user="U"
        )
    assert [e["path"] for e in journal.entries()] == ["1", "2"]
    assert journal.entries()[0]["body_text"] == "x"


def write_seed(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_custom_seed_file(tmp_path: Path) -> None:
    seed = {
        "A_BusinessPartner": [
            {
                "BusinessPartner": "42",
                "BusinessPartnerCategory": "2",
                "OrganizationBPName1": "Only",
                "to_Customer": {},
            }
        ],
        "A_CustomerSalesArea": [
            {
                "Customer": "42",
                "SalesOrganization": "1010",
                "DistributionChannel": "10",
                "Division": "00",
            }
        ],
    }
    settings = S4EmulatorSettings(seed_file=write_seed(tmp_path, seed))
    with serving(create_app(settings), name="s4-seed") as server:
        client = S4(server.url)
        try:
            counts = client.admin("GET", "health").json()["entities"]
            assert counts == {"A_BusinessPartner": 1, "A_Customer": 1, "A_CustomerSalesArea": 1}
            assert client.get("A_Customer('42')").json()["d"]["CustomerName"] == "Only"
        finally:
            client.close()


GOOD_BP = {"BusinessPartner": "1", "BusinessPartnerCategory": "2"}


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"A_Nothing": []}, "unknown entity set 'A_Nothing'"),
        ({"A_BusinessPartner": {}}, "must hold a list"),
        ([], "JSON object of entity set names"),
        ({"A_BusinessPartner": [dict(GOOD_BP, Colour="red")]}, "A_BusinessPartner[0]/Colour"),
        ({"A_BusinessPartner": [dict(GOOD_BP, SearchTerm1="x" * 21)]}, "maximum length of 20"),
        ({"A_BusinessPartner": [GOOD_BP, GOOD_BP]}, "already exists"),
        (
            {"A_CustomerSalesArea": [{"Customer": "1", "SalesOrganization": "1"}]},
            "DistributionChannel",
        ),
        (
            {
                "A_CustomerSalesArea": [
                    {
                        "Customer": "9",
                        "SalesOrganization": "1",
                        "DistributionChannel": "1",
                        "Division": "1",
                    }
                ]
            },
            "Customer 9 does not exist",
        ),
        (
            {
                "A_BusinessPartner": [
                    dict(
                        GOOD_BP, to_Customer={"to_CustomerSalesArea": [{"SalesOrganization": "1"}]}
                    )
                ]
            },
            "to_Customer[0]/to_CustomerSalesArea[0]/DistributionChannel",
        ),
    ],
)
def test_invalid_seeds_fail_at_start_naming_the_place(
    tmp_path: Path, document: Any, fragment: str
) -> None:
    settings = S4EmulatorSettings(seed_file=write_seed(tmp_path, document))
    with pytest.raises(SeedError) as failure:
        create_app(settings)
    assert fragment in str(failure.value)


def test_unreadable_seed_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(SeedError, match="malformed JSON"):
        create_app(S4EmulatorSettings(seed_file=bad))
    with pytest.raises(SeedError, match=r"missing\.json"):
        create_app(S4EmulatorSettings(seed_file=tmp_path / "missing.json"))
