"""Operator actions over real HTTP: dead letters dry-run, corrected, retried and discarded."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from d365sap.config import InboundUser
from d365sap.demo import DEMO_PASSWORD, DEMO_USER, S4_SERVICE
from support.e2e import MakeStack, Stack
from support.examples import example

pytestmark = pytest.mark.e2e

OPERATOR = ("ops", "ops-secret")
S4HC = example("in_erpaccountdetails_S4HC.xml")
UNKNOWN_CUSTOMER = S4HC.replace(b"<number>17100001</number>", b"<number>17199999</number>")


@pytest.fixture
def ops_stack(make_stack: MakeStack) -> Stack:
    operator = InboundUser(
        name=OPERATOR[0], password=SecretStr(OPERATOR[1]), roles=["d365sap.operator"]
    )
    return make_stack(inbound={"users": [operator]})


def act(stack: Stack, message_id: str, action: str, **kwargs: Any) -> httpx2.Response:
    auth = kwargs.pop("auth", OPERATOR)
    return stack.http.post(
        f"{stack.env.service_url}/api/messages/{message_id}/{action}", auth=auth, **kwargs
    )


def modifying_s4_requests(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in stack.s4_requests() if r["method"] not in ("GET", "HEAD")]


def failed_message(stack: Stack, payload: bytes = UNKNOWN_CUSTOMER) -> str:
    response = stack.send(payload)
    assert response.status_code == 422, response.text
    assert response.json()["backend_message"] == "Customer 17199999 does not exist"
    message = stack.wait_final(response.json()["message_id"])
    assert message["status"] == "failed"
    assert "Customer 17199999 does not exist" in message["error"]
    return str(message["id"])


def create_business_partner(stack: Stack, number: str) -> None:
    """The master data arrives in S/4: a business partner with the customer role."""
    service = f"{stack.env.s4_url}{S4_SERVICE}"
    token = stack.http.get(
        f"{service}/", headers={"X-CSRF-Token": "Fetch"}, auth=stack.s4_auth
    ).headers["x-csrf-token"]
    response = stack.http.post(
        f"{service}/A_BusinessPartner",
        json={
            "BusinessPartner": number,
            "BusinessPartnerCategory": "2",
            "OrganizationBPName1": "Arrived later",
            "to_Customer": {},
        },
        headers={"X-CSRF-Token": token},
        auth=stack.s4_auth,
    )
    assert response.status_code == 201, response.text


def test_dry_run_then_resubmit_a_corrected_payload(ops_stack: Stack) -> None:
    message_id = failed_message(ops_stack)
    writes_before = modifying_s4_requests(ops_stack)

    current = act(ops_stack, message_id, "dry-run")
    assert current.status_code == 200, current.text
    report = current.json()
    assert (report["outcome"], report["ok"], report["tested"]) == ("would_fail", False, "version 1")
    assert report["problems"][0]["field"] == "Customer"
    assert "17199999" in report["summary"]

    corrected = S4HC.replace(b"<salesgroup>170</salesgroup>", b"<salesgroup>171</salesgroup>")
    planned = act(ops_stack, message_id, "dry-run", content=corrected).json()
    assert planned["outcome"] == "would_create"
    assert planned["tested"] == "submitted payload"
    assert planned["request"]["method"] == "POST"
    assert '"SalesGroup": "171"' in planned["request"]["body"]
    assert modifying_s4_requests(ops_stack) == writes_before  # the dry runs wrote nothing

    response = act(
        ops_stack, message_id, "resubmit", content=corrected, params={"comment": "number fixed"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    message = ops_stack.wait_final(message_id)
    assert message["status"] == "done"
    assert message["result"]["outcome"] == "created"
    assert message["business_key"] == "17100001/1710/10/00"
    assert [(v["version"], v["comment"]) for v in message["versions"]] == [
        (1, "as received"),
        (2, "number fixed"),
    ]
    area = ops_stack.s4_get(
        "A_CustomerSalesArea(Customer='17100001',SalesOrganization='1710',"
        "DistributionChannel='10',Division='00')"
    )
    assert area.json()["d"]["SalesGroup"] == "171"


def test_retry_after_the_back_end_has_the_customer(ops_stack: Stack) -> None:
    message_id = failed_message(ops_stack)
    create_business_partner(ops_stack, "17199999")

    assert act(ops_stack, message_id, "dry-run").json()["outcome"] == "would_create"
    response = act(ops_stack, message_id, "retry")

    assert response.status_code == 200, response.text
    assert response.json()["status_before"] == "failed"
    message = ops_stack.wait_final(message_id)
    assert message["status"] == "done"
    assert message["attempts"] == 2
    assert [s["attempt"] for s in message["steps"]][-1] == 2
    assert len(message["versions"]) == 1
    again = act(ops_stack, message_id, "retry")
    assert again.status_code == 409
    assert "force" in again.json()["error"]["message"]


def test_discard_a_dead_letter(ops_stack: Stack) -> None:
    message_id = failed_message(ops_stack)

    assert act(ops_stack, message_id, "discard", json={}).status_code == 400
    response = act(ops_stack, message_id, "discard", json={"reason": "customer merged in CRM"})

    assert response.status_code == 200, response.text
    message = ops_stack.message(message_id)
    assert message["status"] == "discarded"
    assert "customer merged in CRM" in message["error"]
    refused = act(ops_stack, message_id, "retry")
    assert refused.status_code == 409
    assert refused.json()["status"] == "discarded"
    assert act(ops_stack, "no-such-id", "discard", json={"reason": "x"}).status_code == 404


def test_erp_dry_run_shows_the_idoc(ops_stack: Stack) -> None:
    response = ops_stack.send(example("in_erpaccounts_ECC.xml"))
    message_id = response.json()["message_id"]
    ops_stack.wait_final(message_id)
    idocs_before = len(ops_stack.idocs())

    report = act(ops_stack, message_id, "dry-run").json()

    assert report["outcome"] == "would_send_idoc"
    assert "<E1KNA1M" in report["request"]["body"]
    assert len(ops_stack.idocs()) == idocs_before


def test_operator_actions_need_the_operator_role(ops_stack: Stack) -> None:
    message_id = failed_message(ops_stack)

    anonymous = act(ops_stack, message_id, "retry", auth=None)
    sender = act(ops_stack, message_id, "retry", auth=(DEMO_USER, DEMO_PASSWORD))
    wrong = act(ops_stack, message_id, "dry-run", auth=(OPERATOR[0], "wrong"))

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert sender.status_code == 403
    assert "d365sap.operator" in sender.json()["error"]["message"]
    assert wrong.status_code == 401
    assert ops_stack.message(message_id)["status"] == "failed"
