"""``POST /webhooks/dataverse`` in process: key, content type, size, validation, storage, dedupe."""

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

from d365sap.config import Settings
from d365sap.engine.store import MessageStore
from d365sap.flows.dataverse_messages import (
    CONTENT_TYPE,
    FLOW_NAME,
    QUEUE,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    decode_change,
)
from d365sap.service import Service
from d365sap.web import webhooks
from support.describing_flow import DescribingFlow
from support.webhook_contexts import context, reference

pytestmark = pytest.mark.anyio

KEY = "s3cret-webhook-key"
ACCOUNT = "8b9e2f1c-3a4d-4e5f-9a0b-1c2d3e4f5a6b"
DETAIL = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
PATH = webhooks.WEBHOOK_PATH


def make_settings(tmp_path: Path, **triggers: Any) -> Settings:
    settings = Settings()
    settings.store.url = f"sqlite:///{tmp_path / 'store.db'}"
    for name, value in triggers.items():
        setattr(settings.dataverse_triggers, name, value)
    return settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def app_for(settings: Settings, store: MessageStore) -> tuple[FastAPI, Service]:
    app = FastAPI()
    app.include_router(webhooks.router)
    service = Service(settings, store=store, serve_jobs=False)
    service.flows.setdefault(FLOW_NAME, DescribingFlow())
    app.state.settings = settings
    app.state.service = service
    return app, service


@pytest.fixture
async def client(tmp_path: Path, store: MessageStore) -> AsyncIterator[httpx2.AsyncClient]:
    settings = make_settings(tmp_path, webhook_key=SecretStr(KEY))
    app, service = app_for(settings, store)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http
    await service.stop()


def post(
    http: httpx2.AsyncClient,
    document: Any,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    key: str | None = KEY,
) -> Any:
    sent = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        sent["x-d365sap-webhook-key"] = key
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return http.post(PATH, content=body, headers=sent, params=params)


async def test_stores_one_change_and_answers_202(
    client: httpx2.AsyncClient, store: MessageStore
) -> None:
    target = {"sap_salesgroup": "171", "sap_accountid": reference("account", ACCOUNT)}
    document = context("sap_erpaccountdetail", DETAIL, target=target)
    response = await post(client, document, headers={"x-request-id": document["RequestId"]})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["outcome"] == "accepted" and body["duplicate"] is False
    assert response.headers["location"] == f"/api/messages/{body['message_id']}"
    stored = store.find_by_source(FLOW_NAME, f"webhook:{document['RequestId']}")
    assert stored is not None and stored.id == body["message_id"]
    assert stored.content_type == CONTENT_TYPE
    assert stored.business_key == ACCOUNT
    assert stored.queue == QUEUE
    assert stored.correlation_id == document["CorrelationId"]
    assert decode_change(stored.payload) == DataverseChange(
        table=ChangeTable.ERP_ACCOUNT_DETAIL,
        id=uuid.UUID(DETAIL),
        account_id=uuid.UUID(ACCOUNT),
        change=ChangeKind.UPDATE,
        source=ChangeSource.WEBHOOK,
    )


async def test_repeated_delivery_is_answered_with_the_first_message(
    client: httpx2.AsyncClient, store: MessageStore
) -> None:
    document = context("account", ACCOUNT, "Create", target={"name": "Contoso"})
    first = await post(client, document)
    again = await post(client, document)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["message_id"] == first.json()["message_id"]
    assert store.counts() == {"queued": 1}
    other = context("account", ACCOUNT, "Update", target={"name": "Contoso Ltd"})
    assert (await post(client, other)).status_code == 202
    assert store.counts() == {"queued": 2}


async def test_write_back_echo_is_ignored(client: httpx2.AsyncClient, store: MessageStore) -> None:
    echo = context("sap_erpaccountdetail", DETAIL, target={"sap_sapcustomernumber": "17100009"})
    response = await post(client, echo)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert store.counts() == {}


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"x-d365sap-webhook-key": KEY}, None),  # HttpHeader
        ({"x-functions-key": KEY}, None),  # HttpHeader, Azure Functions' header
        ({}, {"code": KEY}),  # WebhookKey / HttpQueryString
    ],
)
async def test_each_way_of_sending_the_key(
    client: httpx2.AsyncClient, headers: dict[str, str], params: dict[str, str] | None
) -> None:
    response = await post(
        client, context("account", ACCOUNT), headers=headers, params=params, key=None
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("key", "params", "status"),
    [(None, None, 401), ("wrong", None, 401), (None, {"code": "wrong"}, 401)],
)
async def test_missing_or_wrong_key(
    client: httpx2.AsyncClient,
    store: MessageStore,
    key: str | None,
    params: dict[str, str] | None,
    status: int,
) -> None:
    response = await post(client, context("account", ACCOUNT), key=key, params=params)
    assert response.status_code == status
    assert response.json()["error"]["field"] == "x-d365sap-webhook-key"
    assert store.counts() == {}


async def test_no_key_configured_refuses_everything(tmp_path: Path, store: MessageStore) -> None:
    app, service = app_for(make_settings(tmp_path), store)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://service"
    ) as http:
        response = await post(http, context("account", ACCOUNT), key="anything")
    await service.stop()
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "webhook_key"
    assert store.counts() == {}


async def test_key_from_a_named_variable_and_a_custom_header(
    tmp_path: Path, store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_KEY", "from-env")
    settings = make_settings(
        tmp_path, webhook_key_env="TEST_WEBHOOK_KEY", webhook_header="X-Dynamics-Key"
    )
    app, service = app_for(settings, store)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://service"
    ) as http:
        good = await post(
            http, context("account", ACCOUNT), key=None, headers={"X-Dynamics-Key": "from-env"}
        )
        bad = await post(
            http, context("account", ACCOUNT), key=None, headers={"X-Dynamics-Key": KEY}
        )
    await service.stop()
    assert good.status_code == 202
    assert bad.status_code == 401 and bad.json()["error"]["field"] == "X-Dynamics-Key"


async def test_not_json(client: httpx2.AsyncClient) -> None:
    response = await post(client, b"<xml/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415
    assert response.json()["error"]["field"] == "Content-Type"
    response = await post(client, b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


async def test_body_over_the_limit(tmp_path: Path, store: MessageStore) -> None:
    settings = make_settings(tmp_path, webhook_key=SecretStr(KEY), webhook_max_body_kb=16)
    app, service = app_for(settings, store)
    document = context("account", ACCOUNT, target={"description": "x" * 20_000})
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://service"
    ) as http:
        response = await post(http, document)
    await service.stop()
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert store.counts() == {}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(PrimaryEntityName="contact"), "PrimaryEntityName"),
        (lambda d: d.update(PrimaryEntityId="17"), "PrimaryEntityId"),
        (lambda d: d.pop("MessageName"), "MessageName"),
    ],
)
async def test_invalid_context_names_the_field(
    client: httpx2.AsyncClient, store: MessageStore, mutate: Any, field: str
) -> None:
    document = context("account", ACCOUNT)
    mutate(document)
    response = await post(client, document)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field and error["type"] == "ValidationError"
    assert store.counts() == {}


async def test_service_without_the_flow_answers_503(tmp_path: Path, store: MessageStore) -> None:
    app, service = app_for(make_settings(tmp_path, webhook_key=SecretStr(KEY)), store)
    service.flows.pop(FLOW_NAME)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://service"
    ) as http:
        response = await post(http, context("account", ACCOUNT))
    await service.stop()
    assert response.status_code == 503
    assert response.json()["error"]["field"] == "flow"
    assert store.counts() == {}
