"""SalesOrderBulkRequest_In over HTTP: SOAP 1.1 and 1.2, logon, schema check, SAP's faults."""

from __future__ import annotations

import re

import httpx2
import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import EmulatorUser, S4EmulatorSettings, SalesOrderBulkSettings
from d365sap.web.serving import serving
from emulators.s4.sales_orders.so_support import (
    ItemSpec,
    OrderSpec,
    SalesOrderClient,
    bulk,
    envelope,
    fault_of,
    payload,
)

POINTER = re.compile(
    r"; more details in the web service error log on provider side "
    r"\(UTC timestamp (\d{14}); Transaction ID ([0-9A-F]{32})\)$"
)
TRANSFORMATION = "{http://www.sap.com/transformation-templates}SimpleTransformationFault"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_valid_message_is_accepted_with_202_and_an_empty_body(
    so: SalesOrderClient, version: str
) -> None:
    response = so.post(bulk(OrderSpec(purchase_order=f"PO-{version}"), version=version), version)
    assert response.status_code == 202, response.text
    assert response.content == b""
    so.wait()
    message = so.last_message()
    assert message["soap_version"] == version
    assert message["user"] == "S4_COMM_USER"
    assert message["message_id"] == "MSG-1"
    assert [o["status"] for o in message["orders"]] == ["created"]
    assert [o["PurchaseOrderByCustomer"] for o in so.orders()] == [f"PO-{version}"]


@pytest.mark.parametrize(
    ("order", "path", "fragment"),
    [
        (OrderSpec(organization="17100"), "SalesOrder/SalesOrganization", "'17100'"),
        (OrderSpec(purchase_order="P" * 36), "SalesOrder/PurchaseOrderByCustomer", "length"),
        (OrderSpec(items=[ItemSpec(quantity="two")]), "Item/RequestedQuantity", "'two'"),
        (OrderSpec(items=[ItemSpec(quantity="1.2345")]), "Item/RequestedQuantity", "fraction"),
        (OrderSpec(items=[ItemSpec(action="07")]), "Item/@actionCode", "'07'"),
        (OrderSpec(items=[ItemSpec(item_id="1A")]), "Item/SalesOrderItemID", "'1A'"),
        (OrderSpec(project_flag="yes"), "SalesOrder/YY1_ProjectFlag", "'yes'"),
        (OrderSpec(crm_order_no="N" * 21), "SalesOrder/YY1_CRMOrderNo", "length"),
        (
            OrderSpec(items=[ItemSpec(crm_item_id="x" * 37)]),
            "Item/YY1_CRMOrderItemID",
            "length",
        ),
        (OrderSpec(requested_delivery="04.05.2026"), "RequestedDeliveryDate", "04.05.2026"),
    ],
)
def test_schema_violations_are_client_faults_naming_the_element(
    so: SalesOrderClient, order: OrderSpec, path: str, fragment: str
) -> None:
    response = so.post(bulk(order))
    fault = fault_of(response)
    assert fault["code"] == "soap-env:Client"
    assert path in fault["text"], fault["text"]
    assert fragment in fault["text"], fault["text"]
    assert POINTER.search(fault["text"]), fault["text"]
    [detail] = fault["detail"]
    assert detail.tag == TRANSFORMATION
    reasons = [e.text for e in detail.findall("ReasonText")]
    assert any(path in (r or "") for r in reasons), reasons
    assert so.messages() == [], "a refused message is not stored"
    assert so.orders() == []


def test_every_problem_is_listed_and_the_error_log_has_them_by_transaction(
    so: SalesOrderClient,
) -> None:
    body = bulk(OrderSpec(organization="17100", channel="100", items=[ItemSpec(quantity="x")]))
    fault = fault_of(so.post(body))
    match = POINTER.search(fault["text"])
    assert match is not None
    assert "(and 2 more)" in fault["text"]
    reasons = [e.text or "" for e in fault["detail"][0].findall("ReasonText")]
    assert len(reasons) == 3
    assert "SalesOrganization" in reasons[0]
    assert "DistributionChannel" in reasons[1]
    assert "RequestedQuantity" in reasons[2]
    entries = so.admin("GET", "sales-orders/errors").json()["errors"]
    entry = next(e for e in entries if e["transaction_id"] == match.group(2))
    assert entry["timestamp"] == match.group(1)
    assert entry["problems"] == reasons
    assert entry["user"] == "S4_COMM_USER"
    assert entry["fault_code"] == "soap-env:Client"


def test_a_missing_mandatory_attribute_and_an_unknown_element_are_named(
    so: SalesOrderClient,
) -> None:
    text = payload([OrderSpec()]).replace(
        ' paymentPlanItemListCompleteTransmissionIndicator="true"', ""
    )
    fault = fault_of(so.post(envelope(text)))
    assert "paymentPlanItemListCompleteTransmissionIndicator" in fault["text"]
    text = payload([OrderSpec()]).replace(
        "<SalesOrderType>", "<Colour>red</Colour><SalesOrderType>"
    )
    fault = fault_of(so.post(envelope(text)))
    assert "SalesOrder/Colour" in fault["text"]
    assert "not expected" in fault["text"]


def test_a_custom_field_outside_its_namespace_is_refused(so: SalesOrderClient) -> None:
    text = payload([OrderSpec(crm_order_no="ORD-1")]).replace(
        "<yy1:YY1_CRMOrderNo>ORD-1</yy1:YY1_CRMOrderNo>", "<YY1_CRMOrderNo>ORD-1</YY1_CRMOrderNo>"
    )
    fault = fault_of(so.post(envelope(text)))
    assert "SalesOrder/YY1_CRMOrderNo" in fault["text"]


def test_a_message_without_orders_is_refused(so: SalesOrderClient) -> None:
    text = payload([]).replace("</MessageHeader>", "</MessageHeader>")
    fault = fault_of(so.post(envelope(text)))
    assert "SalesOrder" in fault["text"]
    assert "Missing child element" in fault["text"]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_faults_are_written_in_the_request_version(so: SalesOrderClient, version: str) -> None:
    fault = fault_of(
        so.post(bulk(OrderSpec(organization="17100"), version=version), version), version
    )
    assert fault["code"] == ("soap-env:Client" if version == "1.1" else "env:Sender")


def test_envelope_problems(so: SalesOrderClient) -> None:
    fault = fault_of(so.post(b"<not-xml"))
    assert fault["code"] == "soap-env:Client"
    assert "cannot be parsed" in fault["text"]
    assert fault["detail"] == []
    fault = fault_of(so.post(bulk(version="1.2"), content_type="text/xml"))
    assert fault["code"] == "soap-env:VersionMismatch"
    fault = fault_of(so.post(payload([OrderSpec()]).encode()))
    assert "SOAP message expected" in fault["text"]
    other = envelope('<n0:SalesOrderBulkReplicate xmlns:n0="http://sap.com/xi/SD-SLS"/>')
    fault = fault_of(so.post(other))
    assert "not part of service SalesOrderBulkRequest_In" in fault["text"]
    two = envelope(payload([OrderSpec()]) + payload([OrderSpec()]))
    assert "exactly one element" in fault_of(so.post(two))["text"]
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>' + bulk()[38:]
    assert "DOCTYPE" in fault_of(so.post(doctype))["text"]
    assert so.messages() == []


def test_must_understand_headers_other_than_ws_addressing(so: SalesOrderClient) -> None:
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    addressing = (
        '<wsa:MessageID xmlns:wsa="http://www.w3.org/2005/08/addressing" '
        f'xmlns:e="{soap}" e:mustUnderstand="1">urn:uuid:1</wsa:MessageID>'
    )
    assert so.post(envelope(payload([OrderSpec()]), header=addressing)).status_code == 202
    security = f'<s:Security xmlns:s="urn:example:security" xmlns:e="{soap}" e:mustUnderstand="1"/>'
    fault = fault_of(so.post(envelope(payload([OrderSpec()]), header=security)))
    assert fault["code"] == "soap-env:MustUnderstand"
    assert "Security" in fault["text"]


def test_logon_failures_are_401_with_the_netweaver_realm(so: SalesOrderClient) -> None:
    for auth in (None, ("S4_COMM_USER", "wrong"), ("NOBODY", "Welcome1!")):
        response = httpx2.post(
            so.base + "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in",
            content=bulk(),
            headers={"content-type": "text/xml"},
            auth=auth,
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == (
            'Basic realm="SAP NetWeaver Application Server [S4H/100]"'
        )
        assert "Logon failed" in response.text
    assert so.post(bulk(), query="?sap-client=200").status_code == 401
    assert so.post(bulk(), query="?sap-client=100").status_code == 202
    assert so.post(bulk(), auth=("s4_comm_user", "Welcome1!")).status_code == 202


def test_content_type_method_and_size(so: SalesOrderClient) -> None:
    response = so.post(bulk(), content_type="application/json")
    assert response.status_code == 415
    assert "text/xml" in response.text
    response = so.http.get(so.base + "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    huge = envelope(payload([OrderSpec()]) + " " * (10 * 1024 * 1024))
    assert so.post(huge).status_code == 413


def test_a_user_outside_the_communication_arrangement_lacks_authorization() -> None:
    settings = S4EmulatorSettings(
        sales_orders=SalesOrderBulkSettings(
            users=[EmulatorUser(name="SO_INBOUND", password="Secret-1")]
        )
    )
    with serving(create_app(settings), name="s4-so-users") as server:
        client = SalesOrderClient(server.url)
        try:
            fault = fault_of(client.post(bulk()))
            assert fault["code"] == "soap-env:Server"
            assert fault["text"].startswith(
                'Authorization missing for service "http://sap.com/xi/SD-SLS '
                'SalesOrderBulkRequest_In", operation "SalesOrderBulkRequest_In"'
            )
            assert POINTER.search(fault["text"])
            assert fault["detail"] == []
            assert client.post(bulk(), auth=("SO_INBOUND", "Secret-1")).status_code == 202
            client.wait()
            assert [m["user"] for m in client.messages()] == ["SO_INBOUND"]
        finally:
            client.close()
