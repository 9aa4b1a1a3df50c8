"""Posting semantics: status 51 vs 53, no-data sign, clearing, sales areas, deletion flags."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from emulators.erp.erp_support import (
    ACCOUNTS,
    DETAILS,
    golden,
    numbers,
    post_soap,
    remove,
    set_text,
    xml,
)


def _idoc(client: httpx2.Client, docnum: str) -> dict[str, Any]:
    response = client.get(f"/emulator/idocs/{docnum}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _customer(client: httpx2.Client, kunnr: str = "100123") -> dict[str, Any]:
    response = client.get(f"/emulator/customers/{kunnr}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _area(customer: dict[str, Any], vkorg: str, vtweg: str, spart: str) -> dict[str, Any]:
    for area in customer["sales_areas"]:
        if (area["vkorg"], area["vtweg"], area["spart"]) == (vkorg, vtweg, spart):
            return dict(area)
    raise AssertionError(f"no sales area {vkorg}/{vtweg}/{spart}")


def test_unknown_customer_is_received_but_not_posted(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/KUNNR", "100999")

    response = post_soap(erp, xml(document))

    assert response.status_code == 200  # received: the answer only confirms the IDoc number
    [docnum] = numbers(response)
    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "51"
    assert idoc["status_text"] == "Customer 100999 does not exist"
    assert idoc["posted_at"] is None and idoc["processed_at"]
    assert [s["status"] for s in idoc["statuses"]] == ["50", "64", "62", "51"]
    assert erp.get("/emulator/customers/100999").status_code == 404
    assert _customer(erp)["changed_by_idocs"] == []


def test_customer_numbers_use_alpha_conversion(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/KUNNR", "0000100123")
    [docnum] = numbers(post_soap(erp, xml(document)))
    assert _idoc(erp, docnum)["status"] == "53"
    assert _customer(erp, "0000100123") == _customer(erp, "100123")
    assert _customer(erp)["kunnr"] == "0000100123"
    assert _customer(erp)["kunnr_external"] == "100123"


def test_alphanumeric_customer_number(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/KUNNR", "DEMO-NL01")
    set_text(document, "IDOC/E1KNA1M/LAND1", "NL")
    [docnum] = numbers(post_soap(erp, xml(document)))
    assert _idoc(erp, docnum)["status"] == "53"
    assert _customer(erp, "DEMO-NL01")["kna1"]["NAME1"] == "Muster Pumpentechnik GmbH"


def test_deletion_flag_on_the_sales_area(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/LOEVM", "X")
    [docnum] = numbers(post_soap(erp, xml(document)))

    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "53"
    assert "sales area 1000/10/00 flagged for deletion" in idoc["posting_message"]
    area = _area(_customer(erp), "1000", "10", "00")
    assert area["deletion_flag"] is True
    assert area["knvv"]["LOEVM"] == "X"

    # the golden document carries <LOEVM/>: posting it again removes the flag
    numbers(post_soap(erp, xml(golden(DETAILS))))
    assert _area(_customer(erp), "1000", "10", "00")["deletion_flag"] is False


def test_new_sales_area_is_created(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/VTWEG", "20")
    [docnum] = numbers(post_soap(erp, xml(document)))

    assert "sales area 1000/20/00 created" in _idoc(erp, docnum)["posting_message"]
    customer = _customer(erp)
    assert len(customer["sales_areas"]) == 2
    area = _area(customer, "1000", "20", "00")
    assert area["knvv"]["KDGRP"] == "02" and area["knvv"]["VKGRP"] == "101"
    assert area["knvv"]["WAERS"] == ""  # '/' on a new row leaves the column initial
    assert _area(customer, "1000", "10", "00")["knvv"]["KDGRP"] == "01"  # untouched


def test_function_003_flags_for_deletion(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/MSGFN", "003")
    [docnum] = numbers(post_soap(erp, xml(document)))
    assert _idoc(erp, docnum)["status"] == "53"
    assert _area(_customer(erp), "1000", "10", "00")["deletion_flag"] is True


def test_function_003_on_a_missing_sales_area_is_an_error(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/MSGFN", "003")
    set_text(document, "IDOC/E1KNA1M/E1KNVVM/VKORG", "2000")
    [docnum] = numbers(post_soap(erp, xml(document)))
    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "51"
    assert idoc["status_text"] == "Sales area 2000/10/00 does not exist for customer 100123"


@pytest.mark.parametrize("msgfn", ["/", "003", "004", "005", "009", "018"])
def test_accepted_functions(erp: httpx2.Client, msgfn: str) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/MSGFN", msgfn)
    [docnum] = numbers(post_soap(erp, xml(document)))
    assert _idoc(erp, docnum)["status"] == "53"
    assert _customer(erp)["deletion_flag"] is (msgfn == "003")


@pytest.mark.parametrize("msgfn", ["001", "002", "023", "X"])
def test_unsupported_function_is_status_51(erp: httpx2.Client, msgfn: str) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/MSGFN", msgfn)
    [docnum] = numbers(post_soap(erp, xml(document)))
    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "51"
    assert idoc["status_text"].startswith(f"E1KNA1M-MSGFN: function '{msgfn}' is not supported")
    assert _customer(erp)["kna1"]["NAME2"] == "Zentrale"


def test_error_in_a_sales_area_posts_nothing(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    general = document.find("IDOC/E1KNA1M")
    area_segment = golden(DETAILS).find("IDOC/E1KNA1M/E1KNVVM")
    assert general is not None and area_segment is not None
    general.append(area_segment)
    set_text(document, "IDOC/E1KNA1M/E1KNVVM/LOEVM", "Y")

    [docnum] = numbers(post_soap(erp, xml(document)))

    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "51"
    assert "E1KNVVM-LOEVM: 'Y' is not a valid deletion flag" in idoc["status_text"]
    assert _customer(erp)["kna1"]["NAME2"] == "Zentrale"  # E1KNA1M was not posted either


def test_sales_area_key_is_required(erp: httpx2.Client) -> None:
    document = remove(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/SPART")
    [docnum] = numbers(post_soap(erp, xml(document)))
    idoc = _idoc(erp, docnum)
    assert idoc["status"] == "51"
    assert idoc["status_text"] == "E1KNVVM: sales area incomplete, SPART not given"


def test_missing_customer_number(erp: httpx2.Client) -> None:
    document = remove(golden(ACCOUNTS), "IDOC/E1KNA1M/KUNNR")
    [docnum] = numbers(post_soap(erp, xml(document)))
    assert _idoc(erp, docnum)["status_text"] == "E1KNA1M-KUNNR: customer number is missing"


def test_absent_fields_are_kept(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    general = document.find("IDOC/E1KNA1M")
    assert general is not None
    keep = {"MSGFN", "KUNNR", "NAME1", "Z1ZAKNA1"}
    for child in list(general):
        if child.tag not in keep:
            general.remove(child)
    set_text(document, "IDOC/E1KNA1M/NAME1", "Muster Pumpen AG")

    [docnum] = numbers(post_soap(erp, xml(document)))

    assert _idoc(erp, docnum)["status"] == "53"
    kna1 = _customer(erp)["kna1"]
    assert kna1["NAME1"] == "Muster Pumpen AG"
    assert (kna1["NAME2"], kna1["NAME3"], kna1["TELF1"]) == (
        "Zentrale",
        "Einkauf",
        "+49 231 4102-100",
    )


def test_reset_returns_to_the_seed(erp: httpx2.Client) -> None:
    numbers(post_soap(erp, xml(golden(ACCOUNTS))))
    assert _customer(erp)["kna1"]["NAME2"] == "Werk Dortmund"
    assert erp.post("/emulator/reset").json() == {"status": "reset"}
    assert _customer(erp)["kna1"]["NAME2"] == "Zentrale"
    assert erp.get("/emulator/idocs").json() == {"idocs": []}
    assert numbers(post_soap(erp, xml(golden(ACCOUNTS)))) == ["0000000000000001"]


def test_admin_lookups(erp: httpx2.Client) -> None:
    missing = erp.get("/emulator/customers/4711")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Customer 4711 does not exist"}
    assert erp.get("/emulator/idocs/99").status_code == 404
    listed = erp.get("/emulator/customers").json()["customers"]
    assert [c["kunnr_external"] for c in listed] == ["100123", "100124", "100200", "DEMO-NL01"]
    seeded = _customer(erp)
    assert seeded["kna1"]["NAME1"] == "Muster Pumpentechnik GmbH"
    assert (seeded["kna1"]["ORT01"], seeded["kna1"]["LAND1"]) == ("Dortmund", "DE")
    assert len(seeded["kna1"]) == 109  # every E1KNA1M field except MSGFN is a KNA1 column
    health = erp.get("/emulator/health").json()
    assert health == {
        "status": "ok",
        "system": "ERP",
        "sap_client": "001",
        "customers": 4,
        "idocs": 0,
    }
