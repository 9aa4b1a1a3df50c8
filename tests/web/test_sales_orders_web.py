"""The sales order endpoints in process: the legacy push, S/4's confirmations, order webhooks.

The service stores messages without processing them (``serve_jobs=False``), so each test sees
exactly what an endpoint stored, refused or answered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from d365sap.config import InboundUser, Settings
from d365sap.engine.store import MessageStore
from d365sap.flows.sales_order_messages import (
    CONFIRMATION_FLOW,
    FLOW_NAME,
    decode_submitted,
    submitted_source_id,
)
from d365sap.service import Service
from d365sap.web import sales_orders, webhooks
from d365sap.web.auth import BasicAuthenticator
from support.webhook_contexts import context

pytestmark = pytest.mark.anyio

KEY = "s3cret-webhook-key"
ORDER = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"
LINE = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3b01"
ACCOUNT = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"
CRM = ("crm", "crm-secret")
S4 = ("s4-out", "s4-secret")


def order_json(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "erpsystemtype": "S4HC",
        "salesorderid": ORDER,
        "ordernumber": "ORD-01001",
        "customerid": ACCOUNT,
        "transactioncurrency": "USD",
        "requestdeliveryby": "2026-05-01",
        "lines": [
            {
                "salesorderdetailid": LINE,
                "lineitemnumber": 10,
                "productnumber": "CP-100",
                "quantity": 2,
                "uom": "Each",
            }
        ],
    }
    document.update(changes)
    return document


ORDER_XML = f"""<salesOrderSource>
  <erpsystemtype>S4HC</erpsystemtype><salesorderid>{ORDER}</salesorderid>
  <ordernumber>ORD-01001</ordernumber><customerid>{ACCOUNT}</customerid>
  <lines><line><salesorderdetailid>{LINE}</salesorderdetailid>
    <productnumber>CP-100</productnumber><quantity>2</quantity><uom>Each</uom></line></lines>
</salesOrderSource>""".encode()


def confirmation(confirmation_id: str = "C0FF1RM", *, order_id: str = ORDER) -> bytes:
    return f"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Body><n0:SalesOrderBulkConfirmation xmlns:n0="http://sap.com/xi/SD-SLS"
  xmlns:yy1="http://SAPCustomFields.com/YY1_">
 <MessageHeader><ID>{confirmation_id}</ID><ReferenceID>BULK1</ReferenceID></MessageHeader>
 <SalesOrder><SalesOrderID>42</SalesOrderID><yy1:YY1_CRMOrderID>{order_id}</yy1:YY1_CRMOrderID>
 </SalesOrder>
 <Log><BusinessDocumentProcessingResultCode>3</BusinessDocumentProcessingResultCode></Log>
</n0:SalesOrderBulkConfirmation></soap-env:Body></soap-env:Envelope>""".encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
async def service(tmp_path: Path, store: MessageStore) -> AsyncIterator[Service]:
    settings = Settings()
    settings.store.url = f"sqlite:///{tmp_path / 'store.db'}"
    settings.inbound.users = [
        InboundUser(name=CRM[0], password=SecretStr(CRM[1])),
        InboundUser(name=S4[0], password=SecretStr(S4[1]), roles=["SalesOrderConfirmation.send"]),
    ]
    settings.inbound.max_body_mb = 0.01
    settings.runtime.respond_async = True
    settings.dataverse_triggers.webhook_key = SecretStr(KEY)
    built = Service(settings, store=store, serve_jobs=False)
    yield built
    await built.stop()


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx2.AsyncClient]:
    app = FastAPI()
    app.include_router(sales_orders.router)
    app.include_router(webhooks.router)
    app.state.settings = service.settings
    app.state.service = service
    app.state.authenticator = BasicAuthenticator(service.settings.inbound)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


def push(
    http: httpx2.AsyncClient,
    body: bytes,
    content_type: str = "application/json",
    *,
    auth: tuple[str, str] | None = CRM,
    headers: dict[str, str] | None = None,
) -> Any:
    return http.post(
        "/http/SalesOrder_CRM_S4HC",
        content=body,
        headers={"Content-Type": content_type, **(headers or {})},
        auth=auth,
    )


# the legacy push -------------------------------------------------------------------------------


async def test_a_pushed_order_is_stored_for_the_flow(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    answer = await push(http, json.dumps(order_json()).encode())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["outcome"], body["duplicate"]) == ("accepted", False)
    [message] = store.list(flow=FLOW_NAME)
    assert (message.route, message.business_key, message.queue) == ("s4hc", ORDER, "sales_orders")
    assert message.content_type == "application/json"
    assert answer.headers["X-Message-Id"] == message.id


async def test_an_xml_push_and_its_repetition(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    first = await push(http, ORDER_XML, "application/xml", headers={"SapMessageId": "M-1"})
    again = await push(http, ORDER_XML, "application/xml", headers={"SapMessageId": "M-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    assert again.json()["message_id"] == first.json()["message_id"]
    assert len(store.list(flow=FLOW_NAME)) == 1


async def test_an_order_for_another_system_is_routed_to_discard(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    answer = await push(http, json.dumps(order_json(erpsystemtype="ECC")).encode())
    assert answer.status_code == 202
    [message] = store.list(flow=FLOW_NAME)
    assert message.route == "discard"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (json.dumps(order_json(ordernumber="")).encode(), "application/json", "ordernumber"),
        (json.dumps(order_json(customerid=None)).encode(), "application/json", "customerid"),
        (
            json.dumps(
                order_json(lines=[{"salesorderdetailid": LINE, "quantity": "two"}])
            ).encode(),
            "application/json",
            "lines[0].productnumber",
        ),
        (
            json.dumps(order_json(colour="red")).encode(),
            "application/json",
            "colour",
        ),
        (
            ORDER_XML.replace(b"<quantity>2</quantity>", b"<quantity>two</quantity>"),
            "text/xml",
            "salesOrderSource/lines/line[1]/quantity",
        ),
        (b"<order/>", "application/xml", "body"),
        (b"{not json", "application/json", "body"),
    ],
)
async def test_a_broken_order_is_refused_naming_the_field_and_not_stored(
    http: httpx2.AsyncClient, store: MessageStore, body: bytes, content_type: str, field: str
) -> None:
    answer = await push(http, body, content_type)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert store.list(flow=FLOW_NAME) == []


async def test_the_push_needs_credentials_a_known_type_and_a_bounded_body(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    body = json.dumps(order_json()).encode()
    assert (await push(http, body, auth=None)).status_code == 401
    assert (await push(http, body, auth=(CRM[0], "wrong"))).status_code == 401
    assert (await push(http, body, auth=S4)).status_code == 403  # not ESBMessaging.send
    assert (await push(http, body, "text/plain")).status_code == 415
    huge = json.dumps(order_json(name="x" * 20_000)).encode()
    assert (await push(http, huge)).status_code == 413
    assert store.list(flow=FLOW_NAME) == []


# S/4's confirmations ---------------------------------------------------------------------------


async def test_a_confirmation_is_stored_once(http: httpx2.AsyncClient, store: MessageStore) -> None:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    first = await http.post(
        "/sap/SalesOrderConfirmation", content=confirmation(), headers=headers, auth=S4
    )
    again = await http.post(
        "/sap/SalesOrderConfirmation", content=confirmation(), headers=headers, auth=S4
    )
    assert (first.status_code, again.status_code) == (202, 202)
    assert (first.json()["order_id"], first.json()["sales_order"]) == (ORDER, "42")
    assert again.json()["duplicate"] is True
    [message] = store.list(flow=CONFIRMATION_FLOW)
    assert (message.business_key, message.source_id) == (ORDER, "confirmation:C0FF1RM")


async def test_confirmations_need_the_role_and_a_readable_body(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    xml = {"Content-Type": "text/xml"}
    path = "/sap/SalesOrderConfirmation"
    assert (await http.post(path, content=confirmation(), headers=xml)).status_code == 401
    refused = await http.post(path, content=confirmation(), headers=xml, auth=CRM)
    assert refused.status_code == 403  # an inbound user without the confirmation role
    plain = {"Content-Type": "text/plain"}
    assert (
        await http.post(path, content=confirmation(), headers=plain, auth=S4)
    ).status_code == 415
    anonymous = confirmation().replace(b"<yy1:YY1_CRMOrderID>" + ORDER.encode(), b"<yy1:X>")
    anonymous = anonymous.replace(b"</yy1:YY1_CRMOrderID>", b"</yy1:X>")
    broken = await http.post(path, content=anonymous, headers=xml, auth=S4)
    assert broken.status_code == 400
    assert broken.json()["error"]["field"] == "SalesOrderBulkConfirmation/SalesOrder/YY1_CRMOrderID"
    assert store.list(flow=CONFIRMATION_FLOW) == []


# order webhooks --------------------------------------------------------------------------------


def hook(http: httpx2.AsyncClient, document: dict[str, Any]) -> Any:
    return http.post(
        webhooks.WEBHOOK_PATH,
        content=json.dumps(document).encode(),
        headers={"Content-Type": "application/json", "x-d365sap-webhook-key": KEY},
    )


def state(value: int) -> dict[str, Any]:
    return {
        "__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Value": value,
    }


async def test_a_submission_reaches_the_sales_order_flow(
    http: httpx2.AsyncClient, store: MessageStore
) -> None:
    request_id = str(uuid.uuid4())
    document = context(
        "salesorder",
        ORDER,
        target={"statecode": state(1), "statuscode": {"Value": 3}},
        pre_image={"statecode": state(0)},
        post_image={"statecode": state(1), "versionnumber": 915244},
        request_id=request_id,
    )
    answer = await hook(http, document)
    assert answer.status_code == 202, answer.text
    again = await hook(http, document)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    [message] = store.list(flow=FLOW_NAME)
    submitted = decode_submitted(message.payload)
    assert (submitted.trigger, str(submitted.order_id), submitted.version) == (
        "webhook",
        ORDER,
        915244,
    )
    assert message.source_id == submitted_source_id(ORDER, 915244)
    assert (message.business_key, message.route) == (ORDER, "s4hc")


@pytest.mark.parametrize(
    ("target", "pre", "reason"),
    [
        ({"description": "note"}, {"statecode": 1}, "re-save"),
        ({"statecode": 1}, {"statecode": 1}, "re-save"),
        ({"description": "note"}, None, "did not set statecode"),
        ({"statecode": 0}, {"statecode": 1}, "not submitted"),
    ],
)
async def test_anything_but_the_transition_is_ignored(
    http: httpx2.AsyncClient,
    store: MessageStore,
    target: dict[str, Any],
    pre: dict[str, Any] | None,
    reason: str,
) -> None:
    document = context(
        "salesorder",
        ORDER,
        target=target,
        pre_image=pre,
        post_image={"statecode": target.get("statecode", 1)},
    )
    answer = await hook(http, document)
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"
    assert reason in answer.json()["reason"]
    assert store.list(flow=FLOW_NAME) == []


async def test_a_broken_order_context_names_the_member(http: httpx2.AsyncClient) -> None:
    document = context("salesorder", ORDER, target={"statecode": "one"})
    answer = await hook(http, document)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "InputParameters.Target.statecode"
