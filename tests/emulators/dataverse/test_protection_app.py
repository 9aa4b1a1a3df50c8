"""Service protection through the whole app: 429s, Retry-After, usage headers, per-user limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.identity import (
    DEMO_APPLICATION_USER_ID,
    EntraApplication,
    EntraSettings,
)
from d365sap.emulators.dataverse.protection import (
    BURST_REMAINING,
    TIME_REMAINING,
    ServiceProtectionSettings,
)
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from support.dataverse_api import BASE, HEADERS, WebApi, error_of, mint_token, web_api

OTHER_CLIENT = "3f9a7c21-5b6d-4e8f-a1b2-c3d4e5f60718"
OTHER_USER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def limited(**limits: Any) -> DataverseEmulatorSettings:
    return DataverseEmulatorSettings(protection=ServiceProtectionSettings(**limits))


def usage(api: WebApi) -> dict[str, Any]:
    response = api.get("/emulator/limits", authorization=None)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_number_of_requests_limit_with_retry_after_and_usage_headers() -> None:
    api = web_api(limited(max_requests=3, window_seconds=1.5))
    remaining = []
    for _ in range(3):
        response = api.get("accounts?$select=name")
        assert response.status_code == 200
        remaining.append(response.headers[BURST_REMAINING])
        assert response.headers[TIME_REMAINING].endswith(tuple("0123456789"))
    assert remaining == ["2", "1", "0"]
    refused = api.get("accounts?$select=name")
    assert error_of(refused) == (
        429,
        "0x80072322",
        "Number of requests exceeded the limit of 3 over time window of 1.5 seconds.",
    )
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 2
    assert api.get("accounts", authorization=None).status_code == 401  # not counted
    user = usage(api)["users"][DEMO_APPLICATION_USER_ID]
    assert user["requests"] == 3
    assert user["throttled"]["requests"] == 1
    time.sleep(retry_after)
    assert api.get("accounts?$select=name").status_code == 200


def test_a_batch_counts_as_one_request() -> None:
    api = web_api(limited(max_requests=2, window_seconds=60))
    part = (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "GET accounts?$select=name HTTP/1.1\r\nAccept: application/json\r\n\r\n"
    )
    body = "".join(f"--b1\r\n{part}\r\n" for _ in range(3)) + "--b1--\r\n"
    batch = api.request(
        "POST",
        "$batch",
        content=body.encode(),
        headers={"Content-Type": "multipart/mixed; boundary=b1"},
    )
    assert batch.status_code == 200, batch.text
    assert batch.content.count(b"HTTP/1.1 200") == 3
    assert api.get("accounts?$select=name").status_code == 200
    assert api.get("accounts?$select=name").status_code == 429


def test_users_are_limited_independently() -> None:
    other = EntraApplication(
        client_id=OTHER_CLIENT,
        display_name="second integration",
        client_secret=SecretStr("other-secret"),
        user_id=OTHER_USER,
    )
    entra = EntraSettings()
    settings = DataverseEmulatorSettings(
        entra=EntraSettings(applications=[*entra.applications, other]),
        protection=ServiceProtectionSettings(max_requests=1, window_seconds=60),
    )
    api = web_api(settings)
    form = {
        "grant_type": ["client_credentials"],
        "client_id": [OTHER_CLIENT],
        "client_secret": ["other-secret"],
        "scope": [f"{BASE}/.default"],
    }
    other_token = str(api.environment.issuer.issue(form, [])["access_token"])
    assert api.get("accounts?$select=name").status_code == 200
    assert api.get("accounts?$select=name").status_code == 429
    second = api.get("accounts?$select=name", authorization=f"Bearer {other_token}")
    assert second.status_code == 200
    users = usage(api)["users"]
    assert users[OTHER_USER]["requests"] == 1
    assert users[DEMO_APPLICATION_USER_ID]["throttled"]["requests"] == 1


def test_limits_changed_and_cleared_at_run_time() -> None:
    api = web_api()
    assert usage(api)["settings"] == {
        "enabled": True,
        "window_seconds": 300.0,
        "max_requests": 6000,
        "max_execution_seconds": 1200.0,
        "max_concurrent": 52,
    }
    first = api.get("accounts?$select=name")
    assert first.headers[BURST_REMAINING] == "5999"
    changed = api.request("PUT", "/emulator/limits", json={"max_requests": 1}, authorization=None)
    assert changed.status_code == 200
    assert api.get("accounts").status_code == 429
    api.request("DELETE", "/emulator/limits", authorization=None)
    assert api.get("accounts?$select=name").status_code == 200
    off = api.request(
        "PUT", "/emulator/limits", json={"enabled": False, "max_requests": 1}, authorization=None
    )
    assert off.status_code == 200
    assert all(api.get("accounts").status_code == 200 for _ in range(3))


@pytest.fixture
def slow_server() -> Iterator[tuple[BackgroundServer, dict[str, str]]]:
    """A real server (uvicorn), so a request can stay open while its body trickles in."""
    app = create_app(
        limited(max_concurrent=1, max_execution_seconds=0.4, window_seconds=2, max_requests=100)
    )
    issuer = app.state.dataverse.issuer
    issuer.resource_url = BASE
    headers = {**HEADERS, "Authorization": f"Bearer {mint_token(issuer)}"}
    with serving(app, name="dataverse-protection") as server:
        yield server, headers


def test_concurrent_requests_and_execution_time_over_http(
    slow_server: tuple[BackgroundServer, dict[str, str]],
) -> None:
    server, headers = slow_server
    url = f"{server.url}/api/data/v9.2/accounts"
    started = threading.Event()

    def trickle() -> Iterator[bytes]:
        yield b'{"name": '
        started.set()
        time.sleep(0.6)
        yield b'"Slow upload"}'

    outcome: dict[str, int] = {}

    def slow_create() -> None:
        with httpx2.Client(timeout=10) as client:
            response = client.post(
                url, content=trickle(), headers={**headers, "Content-Type": "application/json"}
            )
            outcome["status"] = response.status_code

    writer = threading.Thread(target=slow_create)
    writer.start()
    assert started.wait(5)
    time.sleep(0.1)
    with httpx2.Client(timeout=10) as client:
        busy = client.get(url + "?$select=name", headers=headers)
        assert error_of(busy) == (
            429,
            "0x80072326",
            "Number of concurrent requests exceeded the limit of 1.",
        )
        assert busy.headers["retry-after"] == "1"
        writer.join(10)
        assert outcome == {"status": 204}
        # the slow request used more than the 0.4 s of execution time the window allows
        spent = client.get(url + "?$select=name", headers=headers)
        status, code, message = error_of(spent)
        assert (status, code) == (429, "0x80072321")
        assert message.startswith(
            "Combined execution time of incoming requests exceeded limit of 400  milliseconds "
            "over time window of 2 seconds."
        )
        wait = int(spent.headers["retry-after"])
        assert 1 <= wait <= 2
        time.sleep(wait)
        assert client.get(url + "?$select=name", headers=headers).status_code == 200
        limits = client.get(f"{server.url}/emulator/limits").json()
        user = limits["users"][DEMO_APPLICATION_USER_ID]
        assert user["throttled"] == {"requests": 0, "execution_time": 1, "concurrency": 1}
