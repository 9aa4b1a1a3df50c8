"""The customer flow end to end (SEED-SPEC §8.7): service and emulators over loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from d365sap.config import IdocControlSettings, RetrySettings
from d365sap.emulators.erp.app import create_app as create_erp_app
from d365sap.web.serving import BackgroundServer
from support.e2e import MakeStack, Stack, idoc_document
from support.examples import canonical, example

pytestmark = pytest.mark.e2e

KEYS = {
    "Customer": "17100001",
    "SalesOrganization": "1710",
    "DistributionChannel": "10",
    "Division": "00",
}
# §3.5 with the deliberate D10 changes: no AdditionalCustomerGroup1, blank properties omitted.
CREATE_BODY: dict[str, Any] = {
    **KEYS,
    "Currency": "USD",
    "CustomerAccountAssignmentGroup": "01",
    "CustomerGroup": "01",
    "CustomerPaymentTerms": "0001",
    "CustomerPriceGroup": "01",
    "IncotermsClassification": "EXW",
    "IncotermsLocation1": "Palo Alto",
    "DeletionIndicator": False,
    "SalesGroup": "170",
    "SalesOffice": "1710",
    "ShippingCondition": "01",
    "SalesDistrict": "US0003",
    "ExchangeRateType": "M",
    "to_SalesAreaTax": {
        "results": [
            {
                **KEYS,
                "DepartureCountry": "US",
                "CustomerTaxCategory": "UTXJ",
                "CustomerTaxClassification": "1",
            }
        ]
    },
}
# §3.6
UPDATE_BODY: dict[str, Any] = {
    **KEYS,
    "Currency": "USD",
    "CustomerGroup": "01",
    "DeletionIndicator": False,
    "SalesGroup": "170",
    "SalesOffice": "1710",
    "SalesDistrict": "US0003",
}
KEYED_PATH = (
    "A_CustomerSalesArea(Customer='17100001',SalesOrganization='1710',"
    "DistributionChannel='10',Division='00')"
)


def renamed(body: bytes) -> bytes:
    """The same sales data with an unmapped field changed: a new message, the same S/4 body."""
    return body.replace(b"<name>S/4HANA Cloud 1710 / 10 / 00</name>", b"<name>S/4HANA 1710</name>")


def writes(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in stack.s4_requests() if r["method"] in ("POST", "PATCH", "MERGE", "PUT")]


def test_example_a_creates_then_updates_the_sales_area(stack: Stack) -> None:
    assert stack.s4_get(KEYED_PATH).status_code == 404

    created = stack.send(example("in_erpaccountdetails_S4HC.xml"))
    assert created.status_code == 201, created.text
    result = created.json()
    assert result["outcome"] == "created"
    assert result["target"] == "s4hc"
    assert result["keys"] == KEYS
    assert result["backend_status"] == 201
    post = writes(stack)[-1]
    assert post["method"] == "POST"
    assert post["path"].rstrip("/").endswith("A_CustomerSalesArea")
    assert post["body"] == CREATE_BODY
    stored = stack.s4_get(KEYED_PATH, **{"$expand": "to_SalesAreaTax"})
    assert stored.status_code == 200
    assert stored.json()["d"]["to_SalesAreaTax"]["results"][0]["CustomerTaxCategory"] == "UTXJ"

    updated = stack.send(renamed(example("in_erpaccountdetails_S4HC.xml")))
    assert updated.status_code == 200, updated.text
    assert updated.json()["outcome"] == "updated"
    patch = writes(stack)[-1]
    assert patch["method"] == "PATCH"
    assert patch["path"].endswith(KEYED_PATH)  # D1: the keyed URL, values not names
    assert patch["body"] == UPDATE_BODY
    assert patch["headers"].get("if-match")  # conditional on the ETag read by the check
    assert len(writes(stack)) == 2
    stats = stack.http.get(f"{stack.env.service_url}/api/stats").json()
    assert stats == {"messages": {"done": 2}, "total": 2}


def test_blank_properties_are_sent_when_configured(make_stack: MakeStack) -> None:
    stack = make_stack(s4={"omit_blank_properties": False})
    assert stack.send(example("in_erpaccountdetails_S4HC.xml")).status_code == 201
    expected = {**CREATE_BODY, "IncotermsLocation2": "", "OrderIsBlockedForCustomer": ""}
    assert writes(stack)[-1]["body"] == expected


def test_update_of_existing_sales_area_with_deletion_flag(stack: Stack) -> None:
    body = example("in_erpaccountdetails_S4HC.xml")
    body = body.replace(b"<number>17100001</number>", b"<number>17100002</number>")
    body = body.replace(b"<deletionflag>0</deletionflag>", b"<deletionflag>1</deletionflag>")
    response = stack.send(body)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "updated"
    patch = writes(stack)[-1]
    assert patch["body"]["DeletionIndicator"] is True
    assert "Customer='17100002'" in patch["path"]


def test_unknown_customer_returns_s4s_error_text(stack: Stack) -> None:
    body = example("in_erpaccountdetails_S4HC.xml").replace(
        b"<number>17100001</number>", b"<number>99999999</number>"
    )
    response = stack.send(body)
    assert response.status_code == 422, response.text
    result = response.json()
    assert result["outcome"] == "error"
    assert result["backend_status"] == 400
    assert "99999999" in result["backend_message"]
    assert result["error"]["retryable"] is False
    message = stack.message(result["message_id"])
    assert message["status"] == "failed"
    assert [s["name"] for s in message["steps"]][-1] == "s4.create_sales_area"


def test_expired_csrf_token_is_refetched(stack: Stack) -> None:
    assert stack.send(example("in_erpaccountdetails_S4HC.xml")).status_code == 201
    stack.expire_csrf()
    response = stack.send(renamed(example("in_erpaccountdetails_S4HC.xml")))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "updated"


def test_example_b_sends_the_golden_idoc(stack: Stack) -> None:
    response = stack.send(example("in_erpaccountdetails_ECC.xml"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["outcome"] == "idoc_sent"
    assert result["route"] == "erp_account_detail"
    number = result["idoc_number"]
    assert len(number) == 16 and number.isdigit()
    idoc = stack.idoc(number)
    assert str(idoc["status"]) == "53"
    sent = idoc_document(idoc["raw_xml"], "ZZ_DEBMAS")
    golden = example("out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccountdetails.xml")
    assert canonical(sent) == canonical(golden)


def test_example_c_sends_the_golden_idoc_and_updates_the_customer(stack: Stack) -> None:
    response = stack.send(example("in_erpaccounts_ECC.xml"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["outcome"], result["route"]) == ("idoc_sent", "erp_account")
    idoc = stack.idoc(result["idoc_number"])
    golden = example("out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccounts.xml")
    assert canonical(idoc_document(idoc["raw_xml"], "ZZ_DEBMAS")) == canonical(golden)
    customer = stack.erp_customer("100123")
    assert customer.status_code == 200
    assert "Muster Pumpentechnik GmbH" in customer.text


def test_deletion_flag_reaches_knvv(stack: Stack) -> None:
    body = example("in_erpaccountdetails_ECC.xml").replace(
        b"<deletionflag>0</deletionflag>", b"<deletionflag>1</deletionflag>"
    )
    result = stack.send(body).json()
    sent = idoc_document(stack.idoc(result["idoc_number"])["raw_xml"], "ZZ_DEBMAS")
    assert sent.findtext(".//E1KNVVM/LOEVM") == "X"


def test_configured_control_record(make_stack: MakeStack) -> None:
    control = IdocControlSettings(
        root_element="DEBMAS07", cimtyp="", mestyp="DEBMAS", sndprn="D365", rcvprn="ERPCLNT001"
    )
    stack = make_stack(control=control)
    result = stack.send(example("in_erpaccountdetails_ECC.xml")).json()
    assert result["outcome"] == "idoc_sent", result
    sent = idoc_document(stack.idoc(result["idoc_number"])["raw_xml"], "DEBMAS07")
    assert sent.findtext(".//EDI_DC40/MESTYP") == "DEBMAS"
    assert sent.findtext(".//EDI_DC40/SNDPRN") == "D365"
    assert sent.findtext(".//E1KNA1M/MSGFN") == "005"  # D12 default


def test_example_a_routed_to_ecc(stack: Stack) -> None:
    body = example("in_erpaccountdetails_S4HC.xml").replace(b">S4HC<", b">ECC<")
    result = stack.send(body).json()
    assert result["route"] == "erp_account_detail"
    sent = idoc_document(stack.idoc(result["idoc_number"])["raw_xml"], "ZZ_DEBMAS")
    assert sent.findtext(".//E1KNA1M/KUNNR") == "17100001"
    assert sent.findtext(".//E1KNVVM/VKORG") == "1710"
    assert writes(stack) == []


@pytest.mark.parametrize(
    ("old", "new", "file"),
    [
        (b">ECC<", b">SAP<", "in_erpaccountdetails_ECC.xml"),
        (b">S4HC<", b">s4hc<", "in_erpaccountdetails_S4HC.xml"),
        (b">ECC<", b">ECC <", "in_erpaccountdetails_ECC.xml"),
        (b"<id>4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4</id>", b"<id> </id>", "in_erpaccounts_ECC.xml"),
    ],
)
def test_discarded_messages(stack: Stack, old: bytes, new: bytes, file: str) -> None:
    response = stack.send(example(file).replace(old, new))
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["outcome"] == "discarded"
    assert result["reason"]
    assert writes(stack) == []
    assert stack.idocs() == []


def test_discard_status_is_configurable(make_stack: MakeStack) -> None:
    stack = make_stack(inbound={"discard_status": 422})
    body = example("in_erpaccountdetails_ECC.xml").replace(b">ECC<", b">SAP<")
    assert stack.send(body).status_code == 422


def test_duplicate_message_id_is_processed_once(stack: Stack) -> None:
    headers = {"SapMessageId": "CRM-MSG-0001"}
    first = stack.send(example("in_erpaccountdetails_ECC.xml"), headers=headers)
    second = stack.send(example("in_erpaccountdetails_ECC.xml"), headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["message_id"] == second.json()["message_id"]
    assert second.json()["duplicate"] is True
    assert second.json()["idoc_number"] == first.json()["idoc_number"]
    assert len(stack.idocs()) == 1


def test_erp_down_without_retries_left_is_a_gateway_error(make_stack: MakeStack) -> None:
    stack = make_stack(runtime={"retry": RetrySettings(max_attempts=1)})
    stack.env.servers[1].stop()  # the ERP emulator
    response = stack.send(example("in_erpaccountdetails_ECC.xml"))
    assert response.status_code == 502, response.text
    result = response.json()
    assert result["error"]["retryable"] is True
    assert stack.message(result["message_id"])["status"] == "failed"


def test_erp_down_for_a_while_is_caught_up(make_stack: MakeStack) -> None:
    stack = make_stack(
        runtime={
            "sync_wait_seconds": 0.5,
            "retry": RetrySettings(base_delay_seconds=0.2, max_delay_seconds=0.5, jitter=0),
        }
    )
    erp = stack.env.servers[1]
    erp.stop()
    response = stack.send(example("in_erpaccountdetails_ECC.xml"))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["outcome"] == "accepted"
    assert accepted["status"] in ("queued", "processing", "retrying")
    assert response.headers["location"] == accepted["status_url"]
    restarted = BackgroundServer(
        create_erp_app(stack.env.settings.emulators.erp), port=erp.port, name="erp-again"
    ).start()
    stack.env.servers[1] = restarted
    message = stack.wait_final(accepted["message_id"])
    assert message["status"] == "done", message
    assert message["attempts"] >= 2
    assert len(stack.idocs()) == 1
