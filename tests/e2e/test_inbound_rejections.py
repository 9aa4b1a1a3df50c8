"""Bad input to the inbound endpoint: a clear error naming the field, nothing sent to SAP."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from d365sap.config import InboundUser
from support.e2e import MakeStack, Stack
from support.examples import example
from support.hostile_xml import BILLION_LAUGHS, XXE

pytestmark = pytest.mark.e2e


def assert_nothing_sent(stack: Stack) -> None:
    assert [r for r in stack.s4_requests() if r["method"] != "GET"] == []
    assert stack.idocs() == []


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["outcome"] == "error"
    return dict(body["error"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<erpaccountdetails><linkederporg>", "body"),
        (b"", "body"),
        (b'{"erpaccountdetails": {}}', "body"),
        (BILLION_LAUGHS, "body"),
        (XXE, "body"),
        (b"<customer/>", "body"),
    ],
)
def test_unreadable_bodies(stack: Stack, body: bytes, field: str) -> None:
    response = stack.send(body)
    assert response.status_code == 400, response.text
    assert error_of(response)["field"] == field
    assert "passwd" not in response.text and "root:" not in response.text
    assert_nothing_sent(stack)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (b"<number>17100001</number>", b"<number> </number>", "erpaccountdetail/number"),
        (b"<sap_vtweg>10</sap_vtweg>", b"", "linkederporg/sap_vtweg"),
        (b"<deletionflag>0</deletionflag>", b"<deletionflag>N</deletionflag>", "deletionflag"),
        (b"<currency>USD</currency>", b"<currency>DOLLARS</currency>", "Currency"),
        (b"<salesgroup>170</salesgroup>", b"<salesgroup>170</salesgroup><extra>1</extra>", "extra"),
    ],
)
def test_invalid_s4_messages_name_the_field(
    stack: Stack, old: bytes, new: bytes, field: str
) -> None:
    body = example("in_erpaccountdetails_S4HC.xml")
    assert old in body
    response = stack.send(body.replace(old, new))
    assert response.status_code == 400, response.text
    assert field in error_of(response)["field"]
    assert_nothing_sent(stack)


def test_invalid_erp_message_names_segment_and_field(stack: Stack) -> None:
    body = example("in_erpaccounts_ECC.xml").replace(
        b"<name1>Muster Pumpentechnik GmbH</name1>",
        b"<name1>Muster Pumpentechnik GmbH und Compagnie KG</name1>",
    )
    response = stack.send(body)
    assert response.status_code == 400, response.text
    assert "E1KNA1M-NAME1" in error_of(response)["field"]
    assert_nothing_sent(stack)


def test_oversized_body(make_stack: MakeStack) -> None:
    stack = make_stack(inbound={"max_body_mb": 0.001})
    big = example("in_erpaccountdetails_S4HC.xml").replace(b"<name>", b"<name>" + b"x" * 2000, 1)
    response = stack.send(big)
    assert response.status_code == 413
    assert error_of(response)["field"] == "body"
    assert_nothing_sent(stack)
    assert stack.http.get(f"{stack.env.service_url}/api/messages").json()["messages"] == []


@pytest.mark.parametrize(
    "auth", [None, ("crm", "wrong"), ("nobody", "crm-demo")], ids=["none", "password", "user"]
)
def test_wrong_credentials(stack: Stack, auth: tuple[str, str] | None) -> None:
    response = stack.send(example("in_erpaccountdetails_S4HC.xml"), auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert error_of(response)["field"] == "Authorization"
    assert_nothing_sent(stack)


def test_user_without_the_role(make_stack: MakeStack) -> None:
    reader = InboundUser(name="reader", password=SecretStr("pw"), roles=["Monitoring.read"])
    stack = make_stack(inbound={"users": [reader]})
    response = stack.send(example("in_erpaccountdetails_S4HC.xml"), auth=("reader", "pw"))
    assert response.status_code == 403
    assert "ESBMessaging.send" in error_of(response)["message"]
    assert_nothing_sent(stack)


def test_non_xml_content_type(stack: Stack) -> None:
    response = stack.send(
        example("in_erpaccountdetails_S4HC.xml"), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 415
    assert error_of(response)["field"] == "Content-Type"
    assert_nothing_sent(stack)
