"""Webhooks through the whole app: Web API writes reach a real receiver, asynchronously."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.identity import DEMO_APPLICATION_USER_ID
from d365sap.emulators.dataverse.webhooks import WebhookRegistration, WebhookSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from support.dataverse_api import BASE, CONTACT_JANE, HEADERS, mint_token
from support.webhook_receiver import Receiver, json_of, receiving


class Client:
    """An authenticated Web API client of a served emulator, plus its admin routes."""

    def __init__(self, server: BackgroundServer, token: str) -> None:
        self.base = server.url
        self.http = httpx2.Client(
            base_url=f"{server.url}/api/data/v9.2/",
            headers={**HEADERS, "Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        return httpx2.request(method, f"{self.base}/emulator/{path}", timeout=10, **kwargs)

    def deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` deliveries are finished; all deliveries in the log."""
        deadline = time.monotonic() + timeout
        while True:
            found: list[dict[str, Any]] = self.admin("GET", "webhooks/deliveries").json()[
                "deliveries"
            ]
            done = [d for d in found if d["status"] in ("succeeded", "failed")]
            if len(done) >= count:
                return found
            assert time.monotonic() < deadline, found
            time.sleep(0.02)


@pytest.fixture
def stack() -> Iterator[tuple[Client, Receiver, BackgroundServer]]:
    with receiving() as (receiver, receiver_server):
        contacts = WebhookRegistration.model_validate(
            {
                "name": "contact names",
                "url": f"{receiver_server.url}/contacts",
                "auth": "HttpHeader",
                "auth_value": {"x-functions-key": "contact-secret"},
                "table": "contact",
                "messages": ["Update"],
                "filtering_attributes": ["firstname", "lastname"],
                "images": [
                    {"name": "PreImage", "kind": "pre", "attributes": ["firstname", "lastname"]}
                ],
            }
        )
        settings = DataverseEmulatorSettings(
            webhooks=WebhookSettings(
                registrations=[contacts],
                organization_domain="contoso.crm4.dynamics.com",
                organization_name="contoso",
                backoff_seconds=0.05,
            )
        )
        app = create_app(settings)
        issuer = app.state.dataverse.issuer
        issuer.resource_url = BASE
        with serving(app, name="dataverse-webhooks") as server:
            client = Client(server, mint_token(issuer))
            yield client, receiver, receiver_server
            client.http.close()


def test_update_reaches_the_receiver_without_holding_the_request(
    stack: tuple[Client, Receiver, BackgroundServer],
) -> None:
    client, receiver, _ = stack
    receiver.delay_seconds = 1.0
    started = time.perf_counter()
    patched = client.http.patch(f"contacts({CONTACT_JANE})", json={"firstname": "Janet"})
    assert patched.status_code == 204, patched.text
    assert time.perf_counter() - started < 0.8  # the receiver takes a second
    [call] = receiver.wait_for(1)
    assert call.path == "/contacts"
    headers = call.headers
    assert headers["x-functions-key"] == "contact-secret"
    assert headers["x-ms-dynamics-organization"] == "contoso.crm4.dynamics.com"
    assert headers["x-ms-dynamics-entity-name"] == "contact"
    assert headers["x-ms-dynamics-request-name"] == "Update"
    assert headers["x-ms-correlation-request-id"] == patched.headers["x-ms-service-request-id"]
    context = json_of(call)
    assert headers["x-request-id"] == context["RequestId"]
    assert (context["MessageName"], context["PrimaryEntityName"]) == ("Update", "contact")
    assert context["PrimaryEntityId"] == CONTACT_JANE
    assert context["UserId"] == context["InitiatingUserId"] == DEMO_APPLICATION_USER_ID
    assert context["OrganizationName"] == "contoso"
    assert (context["Stage"], context["Mode"]) == (40, 1)
    target = {p["key"]: p["value"] for p in context["InputParameters"][0]["value"]["Attributes"]}
    assert target["firstname"] == "Janet"
    assert target["contactid"] == CONTACT_JANE
    assert target["modifiedon"].startswith("/Date(")
    assert "fullname" in target  # recomputed by the server with the first name
    assert "versionnumber" not in target
    [pre] = context["PreEntityImages"]
    before = {p["key"]: p["value"] for p in pre["value"]["Attributes"]}
    assert before["firstname"] == "Jane"
    assert set(before) == {"contactid", "firstname", "lastname"}
    [summary] = context["PostEntityImages"]
    assert summary["key"] == "AsynchronousStepPrimaryName"
    time.sleep(0.05)
    [delivery] = client.deliveries(1)
    assert delivery["status"] == "succeeded"
    assert delivery["registration_name"] == "contact names"


def test_filtering_attributes_registrations_at_run_time_and_retries(
    stack: tuple[Client, Receiver, BackgroundServer],
) -> None:
    client, receiver, receiver_server = stack
    assert (
        client.http.patch(f"contacts({CONTACT_JANE})", json={"telephone1": "1"}).status_code == 204
    )
    spec = {
        "url": f"{receiver_server.url}/accounts",
        "auth": "WebhookKey",
        "auth_value": "account-key",
        "table": "account",
        "messages": ["Create", "Delete"],
    }
    registered = client.admin("POST", "webhooks", json=spec)
    assert registered.status_code == 201, registered.text
    unknown = client.admin("POST", "webhooks", json={**spec, "table": "lead"})
    assert unknown.status_code == 422
    receiver.answer(503)
    created = client.http.post("accounts", json={"name": "Webhook Works Ltd"})
    assert created.status_code == 204
    account_id = created.headers["odata-entityid"].rsplit("(", 1)[1].rstrip(")")
    assert client.http.delete(f"accounts({account_id})").status_code == 204
    deliveries = client.deliveries(2)
    assert [(d["table"], d["message"], d["status"]) for d in deliveries] == [
        ("account", "Create", "succeeded"),
        ("account", "Delete", "succeeded"),
    ]  # the contact's phone number is no filtering attribute
    create = deliveries[0]
    assert [h["status_code"] for h in create["history"]] == [503, 200]
    calls = receiver.snapshot()
    assert {call.query["code"] for call in calls} == {"account-key"}
    first, retry = (c for c in calls if json_of(c)["MessageName"] == "Create")
    assert first.headers["x-request-id"] == retry.headers["x-request-id"]
    assert first.body == retry.body
    context = json_of(retry)
    assert context["OutputParameters"] == [{"key": "id", "value": account_id}]
    target = {p["key"]: p["value"] for p in context["InputParameters"][0]["value"]["Attributes"]}
    assert target["name"] == "Webhook Works Ltd"
    assert target["statecode"]["__type"].startswith("OptionSetValue:")
    [deleted] = [c for c in calls if json_of(c)["MessageName"] == "Delete"]
    reference = json_of(deleted)["InputParameters"][0]["value"]
    assert reference["__type"].startswith("EntityReference:")
    assert (reference["Id"], reference["LogicalName"]) == (account_id, "account")


def test_reset_to_the_seed_triggers_no_webhook(
    stack: tuple[Client, Receiver, BackgroundServer],
) -> None:
    client, receiver, receiver_server = stack
    spec = {
        "url": f"{receiver_server.url}/all",
        "auth_value": "k",
        "table": "contact",
        "messages": ["Create", "Update", "Delete"],
    }
    assert client.admin("POST", "webhooks", json=spec).status_code == 201
    assert client.admin("POST", "reset").status_code == 200
    assert len(client.admin("GET", "webhooks").json()["webhooks"]) == 2  # registrations stay
    time.sleep(0.3)
    assert receiver.snapshot() == []
    assert client.admin("GET", "webhooks/deliveries").json() == {"deliveries": []}
