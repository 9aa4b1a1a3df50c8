"""Webhooks against a real receiver under uvicorn: the HTTP contract, retries, registrations."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from d365sap.emulators.dataverse.events import ChangeKind, RowChange
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.webhook_delivery import WebhookDispatcher, create_webhooks
from d365sap.emulators.dataverse.webhooks import (
    RegistrationError,
    WebhookRegistration,
    WebhookRegistry,
    WebhookSettings,
    webhook_router,
)
from d365sap.web.serving import BackgroundServer, serving
from support.webhook_receiver import Receiver, json_of, receiving

pytestmark = pytest.mark.anyio

USER = "75c2dd85-e89e-e711-8122-000d3aa2331c"
CONTACT = "6d81597f-0f9f-e711-8122-000d3aa2331c"
REQUEST = "0b3c5e1a-1111-4000-8000-000000000001"
FAST = {"backoff_seconds": 0.05, "backoff_factor": 2.0, "timeout_seconds": 5.0}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, BackgroundServer]]:
    with receiving() as pair:
        yield pair


def contact_change(
    kind: ChangeKind = "Update",
    changed: frozenset[str] = frozenset({"firstname"}),
    table: str = "contact",
    request_id: str = REQUEST,
    **extra: Any,
) -> RowChange:
    before = {"contactid": CONTACT, "firstname": "Jim", "lastname": "Glynn", "telephone1": "1"}
    after = {**before, "firstname": "James", **extra}
    return RowChange(
        table=table,
        entity_set=f"{table}s",
        row_id=CONTACT,
        kind=kind,
        before=None if kind == "Create" else before,
        after=None if kind == "Delete" else after,
        version=42,
        caller=Caller(user_id=USER, client_id="client"),
        request_id=request_id,
        changed_columns=changed,
    )


def registration(url: str, **fields: Any) -> WebhookRegistration:
    spec: dict[str, Any] = {
        "name": "contacts to the integration",
        "url": url,
        "auth": "WebhookKey",
        "auth_value": "the-key",
        "table": "contact",
        "messages": ["Create", "Update", "Delete"],
        **fields,
    }
    return WebhookRegistration.model_validate(spec)


@asynccontextmanager
async def dispatching(
    *registrations: WebhookRegistration, **settings: Any
) -> AsyncIterator[WebhookDispatcher]:
    config = WebhookSettings(registrations=list(registrations), **{**FAST, **settings})
    _, dispatcher = create_webhooks(config)
    async with dispatcher.running():
        yield dispatcher


async def settle(dispatcher: WebhookDispatcher, timeout: float = 10.0) -> list[dict[str, Any]]:
    assert await dispatcher.wait_idle(timeout), dispatcher.deliveries()
    return dispatcher.deliveries()


async def test_http_contract_headers_key_and_body(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    settings = {"organization_domain": "contoso.crm4.dynamics.com", "organization_name": "contoso"}
    async with dispatching(
        registration(f"{server.url}/hooks/contact?source=dv"), **settings
    ) as hub:
        hub(contact_change())
        [delivery] = await settle(hub)
    [call] = sink.snapshot()
    assert call.path == "/hooks/contact"
    assert call.query == {"source": "dv", "code": "the-key"}
    context = json_of(call)
    headers = call.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == context["RequestId"] == delivery["request_id"]
    assert headers["x-ms-dynamics-organization"] == "contoso.crm4.dynamics.com"
    assert headers["x-ms-dynamics-entity-name"] == "contact"
    assert headers["x-ms-dynamics-request-name"] == "Update"
    assert headers["x-ms-correlation-request-id"] == context["CorrelationId"] == REQUEST
    assert "x-ms-dynamics-msg-size-exceeded" not in headers
    assert context["MessageName"] == "Update"
    assert context["PrimaryEntityName"] == "contact"
    assert context["PrimaryEntityId"] == CONTACT
    assert (context["Stage"], context["Mode"], context["Depth"]) == (40, 1, 1)
    assert context["UserId"] == context["InitiatingUserId"] == USER
    assert context["OrganizationName"] == "contoso"
    assert context["OperationId"] == delivery["id"]
    target = context["InputParameters"][0]["value"]
    assert {p["key"]: p["value"] for p in target["Attributes"]} == {
        "contactid": CONTACT,
        "firstname": "James",
    }
    assert b"\\/Date(" in call.body and b"http:\\/\\/schemas.microsoft.com" in call.body
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery["url"] == f"{server.url}/hooks/contact?source=dv"  # the key stays out


async def test_http_header_and_query_string_authentication(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    by_header = registration(
        f"{server.url}/h", auth="HttpHeader", auth_value={"X-Api-Key": "k1", "X-Tenant": "t"}
    )
    by_query = registration(
        f"{server.url}/q", auth="HttpQueryString", auth_value={"sig": "a b&c", "v": "2"}
    )
    async with dispatching(by_header, by_query) as hub:
        hub(contact_change())
        deliveries = await settle(hub)
        detail = hub.delivery(deliveries[0]["id"])
    calls = {call.path: call for call in sink.snapshot()}
    assert calls["/h"].headers["x-api-key"] == "k1"
    assert calls["/h"].headers["x-tenant"] == "t"
    assert calls["/h"].query == {}
    assert calls["/q"].query == {"sig": "a b&c", "v": "2"}
    assert "x-api-key" not in calls["/q"].headers
    assert detail is not None
    assert detail["headers"]["x-api-key"] == "***"
    assert detail["context"]["MessageName"] == "Update"
    # one correlation for the request, one request id per delivery
    assert (
        calls["/h"].headers["x-ms-correlation-request-id"]
        == calls["/q"].headers["x-ms-correlation-request-id"]
    )
    assert calls["/h"].headers["x-request-id"] != calls["/q"].headers["x-request-id"]


async def test_retries_with_back_off_and_the_same_request(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    sink.answer(500, 503)
    async with dispatching(registration(server.url + "/r"), retries=3) as hub:
        hub(contact_change())
        [delivery] = await settle(hub)
    calls = sink.snapshot()
    assert len(calls) == 3
    assert len({call.headers["x-request-id"] for call in calls}) == 1
    assert len({call.body for call in calls}) == 1
    assert calls[1].at - calls[0].at >= 0.05
    assert calls[2].at - calls[1].at >= 0.1
    assert delivery["status"] == "succeeded"
    assert [h["status_code"] for h in delivery["history"]] == [500, 503, 200]
    assert delivery["history"][0]["error"] == "HTTP 500 Internal Server Error"
    assert delivery["last_error"] is None


async def test_gives_up_after_the_configured_retries(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    sink.default_status = 500
    async with dispatching(registration(server.url), retries=2) as hub:
        hub(contact_change())
        [delivery] = await settle(hub)
        assert hub.deliveries("failed") == [delivery]
        assert hub.deliveries("succeeded") == []
    assert len(sink.snapshot()) == 3
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] == 500
    assert delivery["last_error"] == "HTTP 500 Internal Server Error"
    assert delivery["completed_at"] is not None


async def test_gateway_errors_only_like_dataverse(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    sink.answer(500, 502)
    async with dispatching(registration(server.url), retries=1, retry_on="gateway_errors") as hub:
        hub(contact_change())  # 500: not retried
        hub(contact_change())  # 502, then 200
        first, second = await settle(hub)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert (second["status"], second["attempts"]) == ("succeeded", 2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_errors_are_retried_until_the_receiver_is_up() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/late"
    async with dispatching(
        registration(url), retries=5, backoff_seconds=0.3, backoff_factor=1.0
    ) as hub:
        hub(contact_change())
        while not hub.deliveries()[0]["history"]:
            await asyncio.sleep(0.01)
        first = hub.deliveries()[0]
        assert first["status"] == "retrying"
        assert first["last_status_code"] is None
        assert first["last_error"].startswith("ConnectError")
        assert first["next_attempt_at"] is not None
        with receiving(port) as (sink, _):
            [delivery] = await settle(hub)
            assert len(sink.snapshot()) == 1
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] >= 2


async def test_unreachable_receiver_fails_with_the_transport_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    async with dispatching(registration(url), retries=1) as hub:
        hub(contact_change())
        [delivery] = await settle(hub)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 2
    assert "ConnectError" in delivery["last_error"]


async def test_timeout_is_a_failure(receiver: tuple[Receiver, BackgroundServer]) -> None:
    sink, server = receiver
    sink.delay_seconds = 1.0
    async with dispatching(registration(server.url), retries=0, timeout_seconds=0.2) as hub:
        hub(contact_change())
        [delivery] = await settle(hub)
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "no answer within 0.2 s"


async def test_delivery_does_not_block_the_caller(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    sink.delay_seconds = 0.5
    async with dispatching(registration(server.url), workers=4) as hub:
        started = time.perf_counter()
        for _ in range(4):
            hub(contact_change())
        assert time.perf_counter() - started < 0.2
        assert {d["status"] for d in hub.deliveries()} <= {"pending", "delivering"}
        deliveries = await settle(hub)
        took = time.perf_counter() - started
    assert [d["status"] for d in deliveries] == ["succeeded"] * 4
    assert took < 1.5  # the four went out side by side


async def test_messages_tables_and_filtering_attributes_select_the_changes(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    _, server = receiver
    filtered = registration(
        server.url, messages=["Update"], filtering_attributes=["telephone1", "parentcustomerid"]
    )
    async with dispatching(filtered) as hub:
        hub(contact_change("Update", frozenset({"firstname"})))  # not a filtering attribute
        hub(contact_change("Create"))  # not registered
        hub(contact_change("Delete"))  # not registered
        hub(contact_change("Update", frozenset({"telephone1"}), request_id=""))  # seeding
        hub(contact_change("Update", frozenset(), table="account"))  # other table
        assert hub.deliveries() == []
        hub(contact_change("Update", frozenset({"telephone1"})))  # set, even to the same value
        hub(contact_change("Update", frozenset(), _parentcustomerid_value="a-1"))  # changed value
        assert len(await settle(hub)) == 2


async def test_oversized_context_is_stripped_and_flagged(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    async with dispatching(registration(server.url)) as hub:
        hub(contact_change("Create", description="x" * 300_000))
        [delivery] = await settle(hub)
    [call] = sink.snapshot()
    assert call.headers["x-ms-dynamics-msg-size-exceeded"] == "true"
    assert "InputParameters" not in json_of(call)
    assert delivery["size_exceeded"] is True


async def test_changes_before_start_go_out_once_started(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    sink, server = receiver
    _, hub = create_webhooks(WebhookSettings(registrations=[registration(server.url)], **FAST))
    hub(contact_change())
    assert hub.deliveries()[0]["status"] == "pending"
    async with hub.running():
        await settle(hub)
    assert len(sink.snapshot()) == 1


async def test_log_keeps_the_newest_finished_deliveries(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    _, server = receiver
    async with dispatching(registration(server.url), delivery_log_size=2) as hub:
        for _ in range(3):
            hub(contact_change())
            await settle(hub)
        assert len(hub.deliveries()) == 2
        hub.forget_finished()
        assert hub.deliveries() == []


def test_registration_validation() -> None:
    def problem(**fields: Any) -> str:
        spec = {"url": "http://127.0.0.1:9/x", **fields}
        with pytest.raises(ValueError, match=r".") as excinfo:
            registration(**spec)
        return str(excinfo.value)

    assert "url" in problem(url="ftp://host/x")
    assert "url" in problem(url="/relative")
    assert "WebhookKey needs the key" in problem(auth_value={"a": "b"})
    assert "HttpHeader needs name" in problem(auth="HttpHeader", auth_value="k")
    assert "filtering_attributes" in problem(messages=["Create"], filtering_attributes=["x"])
    assert "names a message twice" in problem(messages=["Update", "Update"])
    assert "messages" in problem(messages=["Assign"])
    assert "pre image" in problem(messages=["Create"], images=[{"name": "p", "kind": "pre"}])
    assert "post image" in problem(messages=["Delete"], images=[{"name": "p", "kind": "post"}])
    assert "GUID" in problem(id="not-a-guid")
    assert "extra" in problem(secret="x").lower()


def test_registry_checks_tables_and_attributes() -> None:
    registry = WebhookRegistry({"contact": ["contactid", "firstname", "parentcustomerid"]})
    with pytest.raises(RegistrationError) as unknown_table:
        registry.add(registration("http://h/", table="lead"))
    assert unknown_table.value.field == "table"
    with pytest.raises(RegistrationError) as unknown_column:
        registry.add(registration("http://h/", messages=["Update"], filtering_attributes=["fax"]))
    assert unknown_column.value.field == "filtering_attributes"
    image = [{"name": "pre", "kind": "pre", "attributes": ["_parentcustomerid_value", "nope"]}]
    with pytest.raises(RegistrationError) as unknown_image_column:
        registry.add(registration("http://h/", images=image))
    assert (unknown_image_column.value.field, unknown_image_column.value.given) == (
        "images",
        "nope",
    )
    fixed = registry.add(registration("http://h/", id="0F0F0F0F-0000-0000-0000-000000000001"))
    assert fixed.id == "0f0f0f0f-0000-0000-0000-000000000001"
    with pytest.raises(RegistrationError) as duplicate:
        registry.add(registration("http://h/", id=fixed.id))
    assert duplicate.value.field == "id"


def test_settings_registrations_are_checked_at_start_up() -> None:
    settings = WebhookSettings(registrations=[registration("http://h/", table="lead")])
    with pytest.raises(RegistrationError):
        create_webhooks(settings, tables={"contact": ["contactid"]})
    registry, _ = create_webhooks(WebhookSettings(registrations=[registration("http://h/")]))
    assert [r.registration.table for r in registry.all()] == ["contact"]


def test_admin_routes_and_deliveries_from_another_thread(
    receiver: tuple[Receiver, BackgroundServer],
) -> None:
    """The store may call the listener on a worker thread; the app's loop sends."""
    sink, server = receiver
    registry, hub = create_webhooks(
        WebhookSettings(**FAST), tables={"contact": ["contactid", "firstname", "telephone1"]}
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with hub.running():
            yield

    host = FastAPI(lifespan=lifespan)
    host.include_router(webhook_router(registry, hub))
    with serving(host, name="webhook-host") as admin, httpx2.Client(base_url=admin.url) as http:
        bad = http.post("/emulator/webhooks", json={"url": server.url, "table": "contact"})
        assert bad.status_code == 422
        unknown = registration(server.url, table="lead").model_dump(mode="json")
        refused = http.post("/emulator/webhooks", json=unknown)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "table"]
        spec = registration(
            server.url + "/in", auth="HttpHeader", auth_value={"Authorization": "Bearer s3cret"}
        )
        created = http.post(
            "/emulator/webhooks", json=spec.model_dump(mode="json", exclude_none=True)
        )
        assert created.status_code == 201, created.text
        view = created.json()
        assert view["auth_value"] == {"Authorization": "***"}
        assert "s3cret" not in json.dumps(http.get("/emulator/webhooks").json())
        hub(contact_change())  # from this (non-loop) thread
        [call] = sink.wait_for(1)
        assert call.headers["authorization"] == "Bearer s3cret"
        deliveries = _poll(http, lambda ds: ds and ds[0]["status"] == "succeeded")
        assert deliveries[0]["registration_id"] == view["id"]
        one = http.get(f"/emulator/webhooks/deliveries/{deliveries[0]['id']}").json()
        assert one["headers"]["authorization"] == "***"
        assert one["context"]["OwningExtension"]["Id"] == view["step_id"]
        assert http.get("/emulator/webhooks/deliveries/nope").status_code == 404
        assert http.get("/emulator/webhooks/deliveries", params={"status": "failed"}).json() == {
            "deliveries": []
        }
        assert http.delete(f"/emulator/webhooks/{view['id']}").status_code == 204
        assert http.delete(f"/emulator/webhooks/{view['id']}").status_code == 404
        hub(contact_change())
        assert http.get("/emulator/webhooks").json() == {"webhooks": []}
        assert http.delete("/emulator/webhooks/deliveries").json() == {"deliveries": []}
        assert http.delete("/emulator/webhooks").status_code == 204
    assert len(sink.snapshot()) == 1


def _poll(http: httpx2.Client, done: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = http.get("/emulator/webhooks/deliveries").json()[
            "deliveries"
        ]
        if done(deliveries):
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.02)
