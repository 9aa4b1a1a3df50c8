"""DEBMAS IDocs that create customers: account groups, number ranges, mandatory fields, F2 messages.

Every test sends a real IDoc over loopback HTTP and reads the outcome through the admin routes.
"""

from __future__ import annotations

import httpx2
import pytest

from d365sap.emulators.erp.app import create_app
from d365sap.emulators.erp.numbering import AccountGroup
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.web.serving import serving
from emulators.erp.erp_support import AUTH, create_document, numbers, post_soap

SAP_IDOC = {"Content-Type": "application/x-sap.idoc"}


def send(erp: httpx2.Client, document: bytes, **headers: str) -> dict[str, object]:
    """Post the IDoc and return the emulator's record of it."""
    docnum = numbers(post_soap(erp, document, headers=headers or None))[0]
    return dict(erp.get(f"/emulator/idocs/{docnum}").json())


def last_message(idoc: dict[str, object]) -> dict[str, object]:
    statuses = idoc["statuses"]
    assert isinstance(statuses, list)
    message = statuses[-1]["message"]
    assert isinstance(message, dict)
    return message


def test_internal_numbering_creates_the_next_number(erp: httpx2.Client) -> None:
    idoc = send(erp, create_document())
    assert idoc["status"] == "53"
    assert idoc["kunnr"] == "0000100201"  # the seed's highest number in 0001's range is 100200
    assert idoc["status_text"] == "Customer 0000100201 has been created for sales area 1000 10 00"
    message = last_message(idoc)
    assert (message["id"], message["number"], message["type"]) == ("F2", "172", "S")
    assert message["parameters"] == ["0000100201", "1000", "10", "00"]
    customer = erp.get("/emulator/customers/100201").json()
    assert customer["kna1"]["NAME1"] == "Neukunde Pumpen AG"
    assert customer["kna1"]["KTOKD"] == "0001"
    assert customer["kna1"]["LAND1"] == "DE"
    assert [a["knvv"]["WAERS"] for a in customer["sales_areas"]] == ["EUR"]
    assert customer["changed_by_idocs"] == [idoc["docnum"]]
    second = send(erp, create_document())
    assert second["kunnr"] == "0000100202"


def test_general_data_only_reports_f2_247(erp: httpx2.Client) -> None:
    idoc = send(erp, create_document(sales_areas=()))
    assert idoc["status"] == "53"
    message = last_message(idoc)
    assert (message["number"], message["parameters"]) == ("247", ["0000100201"])
    assert idoc["status_text"] == "Customer 0000100201 has been created"
    assert erp.get("/emulator/customers/100201").json()["sales_areas"] == []


def test_external_number_in_range(erp: httpx2.Client) -> None:
    idoc = send(erp, create_document(kunnr="900005", ktokd="ZEXT"))
    assert (idoc["status"], idoc["kunnr"]) == ("53", "0000900005")
    assert last_message(idoc)["parameters"][0] == "0000900005"
    assert erp.get("/emulator/customers/0000900005").json()["kna1"]["KTOKD"] == "ZEXT"


@pytest.mark.parametrize(
    ("kunnr", "ktokd", "general", "problem"),
    [
        ("800000", "ZEXT", None, "not in the number range of account group ZEXT"),
        (None, "ZEXT", None, "needs the customer number from the sender"),
        ("555555", "0001", None, "assigns numbers itself: leave KUNNR empty"),
        (None, "9999", None, "account group 9999 is not defined"),
        (None, "0001", {"LAND1": "DE"}, "E1KNA1M-NAME1: a name is required"),
        (None, "0001", {"NAME1": "Ohne Land"}, "E1KNA1M-LAND1: a country is required"),
        ("555555", None, None, "Customer 555555 does not exist"),
        (None, None, None, "E1KNA1M-KUNNR: customer number is missing"),
    ],
)
def test_refused_creations_end_in_51_and_create_nothing(
    erp: httpx2.Client,
    kunnr: str | None,
    ktokd: str | None,
    general: dict[str, str] | None,
    problem: str,
) -> None:
    before = len(erp.get("/emulator/customers").json()["customers"])
    idoc = send(erp, create_document(kunnr=kunnr, ktokd=ktokd, general=general))
    assert idoc["status"] == "51"
    assert problem in str(idoc["status_text"])
    statuses = idoc["statuses"]
    assert isinstance(statuses, list) and statuses[-1]["message"] is None
    assert len(erp.get("/emulator/customers").json()["customers"]) == before


def test_same_sap_message_id_creates_once(erp: httpx2.Client) -> None:
    document = create_document()
    message_id = "0123456789ABCDEF0123456789ABCDEF"
    first = numbers(post_soap(erp, document, headers={**SAP_IDOC, "SapMessageId": message_id}))
    again = numbers(post_soap(erp, document, headers={**SAP_IDOC, "SapMessageId": message_id}))
    assert first == again
    customers = erp.get("/emulator/customers").json()["customers"]
    created = [c["kunnr"] for c in customers if c["changed_by_idocs"] == first]
    assert created == ["0000100201"]
    assert erp.get("/emulator/customers/100202").status_code == 404


def test_text_xml_repeats_create_twice_as_in_sap(erp: httpx2.Client) -> None:
    document = create_document()
    first = send(erp, document)
    second = send(erp, document)
    assert (first["kunnr"], second["kunnr"]) == ("0000100201", "0000100202")


def test_a_full_internal_range_is_reported() -> None:
    settings = ErpEmulatorSettings(
        account_groups=[
            AccountGroup(name="0001", numbering="internal", range_from="100199", range_to="100201")
        ]
    )
    with (
        serving(create_app(settings), name="erp-small-range") as server,
        httpx2.Client(base_url=server.url, auth=AUTH, timeout=10.0) as erp,
    ):
        assert send(erp, create_document())["kunnr"] == "0000100201"
        full = send(erp, create_document())
        assert full["status"] == "51"
        assert "Number range of account group 0001 (internal" in str(full["status_text"])


def test_account_group_names_must_be_unique() -> None:
    group = AccountGroup(name="0001", numbering="internal", range_from="1", range_to="9")
    with pytest.raises(ValueError, match="account group names must be unique"):
        ErpEmulatorSettings(account_groups=[group, group])
    with pytest.raises(ValueError, match="range_from is greater than range_to"):
        AccountGroup(name="0002", numbering="external", range_from="9", range_to="1")
