"""Fault injection in the S/4 emulator, over loopback HTTP: every kind, scope, admin API, config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from d365sap.config import load_settings
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from emulators.s4.s4_support import S4, sales_area_path, sap_error

SALES_AREA = sales_area_path("17100002")
NEW_SALES_AREA = {
    "Customer": "17100001",
    "SalesOrganization": "1710",
    "DistributionChannel": "10",
    "Division": "00",
    "Currency": "USD",
    "SalesGroup": "170",
}


@pytest.fixture(scope="module")
def faults_server() -> Iterator[BackgroundServer]:
    """A server of its own: the shared S/4 server must never see an injected fault."""
    with serving(create_app(S4EmulatorSettings()), name="s4-faults") as server:
        yield server


@pytest.fixture
def s4(faults_server: BackgroundServer) -> Iterator[S4]:
    client = S4(faults_server.url)
    client.reset()
    clear = client.admin("DELETE", "faults")
    assert clear.status_code == 200, clear.text
    yield client
    client.admin("DELETE", "faults")
    client.close()


def put_faults(s4: S4, **settings: Any) -> dict[str, Any]:
    response = httpx2.put(s4.base + "/emulator/faults", json=settings, timeout=5.0)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def next_faults(s4: S4, kind: str, count: int = 1, **extra: Any) -> None:
    body = {"kind": kind, "count": count, **extra}
    response = httpx2.post(s4.base + "/emulator/faults/next", json=body, timeout=5.0)
    assert response.status_code == 200, response.text


def faults(s4: S4) -> dict[str, Any]:
    result: dict[str, Any] = s4.admin("GET", "faults").json()
    return result


def test_error_rate_answers_with_sap_gateway_error_body(s4: S4) -> None:
    put_faults(s4, error_rate={503: 1.0})
    response = s4.get("A_Customer('17100001')")
    error = sap_error(response, 503, code="/IWBEP/CM_MGW_RT/016", contains="busy")
    assert error["innererror"]["errordetails"][0]["code"]
    state = faults(s4)
    assert state["counters"]["error"] == 1
    assert state["error_statuses"] == {"503": 1}


def test_one_shot_error_with_its_own_status(s4: S4) -> None:
    s4.fetch_token()
    next_faults(s4, "error", 2, status=502)
    sap_error(s4.get(""), 502, code="/IWBEP/CM_MGW_RT/015")
    sap_error(s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"}), 502)
    assert s4.get("").status_code == 200
    assert s4.get(SALES_AREA).json()["d"]["SalesGroup"] != "171"


def test_retry_after_is_429_with_the_header(s4: S4) -> None:
    put_faults(s4, retry_after_rate=1.0, retry_after_seconds=7)
    response = s4.get("A_Customer")
    sap_error(response, 429, contains="retry after 7 seconds")
    assert response.headers["retry-after"] == "7"


def test_latency_is_added(s4: S4) -> None:
    put_faults(s4, latency_ms=300, latency_jitter_ms=100)
    started = time.monotonic()
    response = s4.get("A_Customer('17100001')")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 0.3 <= elapsed < 2.0
    assert faults(s4)["counters"]["latency"] == 1


def test_timeout_holds_the_request_past_the_client_timeout(s4: S4) -> None:
    put_faults(s4, timeout_rate=1.0, timeout_seconds=5)
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        s4.http.get(s4.root + "A_Customer", timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert s4.admin("GET", "health").status_code == 200
    assert faults(s4)["counters"]["timeout"] == 1


def test_timeout_then_504(s4: S4) -> None:
    put_faults(s4, timeout_rate=1.0, timeout_seconds=0.3)
    started = time.monotonic()
    response = s4.get("A_Customer")
    assert time.monotonic() - started >= 0.3
    sap_error(response, 504, code="/IWBEP/CM_MGW_RT/017")


def test_timeout_then_drop(s4: S4) -> None:
    put_faults(s4, timeout_rate=1.0, timeout_seconds=0.2, timeout_action="drop")
    with pytest.raises(httpx2.TransportError) as caught:
        s4.get("A_Customer")
    assert not isinstance(caught.value, httpx2.TimeoutException)


def test_drop_is_a_transport_error_not_a_status(s4: S4) -> None:
    next_faults(s4, "drop")
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        s4.get("A_Customer")
    assert s4.get("A_Customer").status_code == 200
    s4.fetch_token()
    put_faults(s4, drop_rate=1.0)
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"})
    s4.admin("DELETE", "faults")
    assert s4.get(SALES_AREA).json()["d"]["SalesGroup"] != "171", "dropped before the write"


def test_drop_after_commit_writes_and_loses_the_answer(s4: S4) -> None:
    s4.fetch_token()
    s4.admin("DELETE", "requests")
    next_faults(s4, "drop_after_commit")
    assert s4.get("A_Customer").status_code == 200, "reads are not writes"
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        s4.send("POST", "A_CustomerSalesArea", NEW_SALES_AREA)
    created = s4.get(sales_area_path("17100001"))
    assert created.status_code == 200, "the write landed"
    assert created.json()["d"]["SalesGroup"] == "170"
    journal = s4.admin("GET", "requests").json()["requests"]
    assert [(r["method"], r["status"]) for r in journal] == [("POST", 201)]
    again = s4.send("POST", "A_CustomerSalesArea", NEW_SALES_AREA)
    sap_error(again, 400, code="CVI_EI/054")
    assert faults(s4)["counters"]["drop_after_commit"] == 1


def test_drop_after_commit_in_a_change_via_merge_tunnel(s4: S4) -> None:
    put_faults(s4, drop_after_commit_rate=1.0)
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        s4.send("POST", SALES_AREA, {"SalesGroup": "175"}, headers={"X-HTTP-Method": "MERGE"})
    assert s4.get(SALES_AREA).json()["d"]["SalesGroup"] == "175"


def test_csrf_expiry_expires_the_callers_token(s4: S4) -> None:
    token = s4.fetch_token()
    next_faults(s4, "csrf_expiry")
    response = s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"})
    assert response.status_code == 403
    assert response.headers["x-csrf-token"] == "Required"
    assert response.text == "CSRF token validation failed"
    assert s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"}).status_code == 403, "stays expired"
    assert s4.fetch_token() != token
    assert s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"}).status_code == 204


def test_etag_change_makes_a_conditional_write_fail_with_412(s4: S4) -> None:
    read = s4.get(SALES_AREA)
    tag = read.headers["etag"]
    next_faults(s4, "etag_change")
    unconditional = s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"})
    assert unconditional.status_code == 204, "no If-Match, nothing to change behind its back"
    tag = s4.get(SALES_AREA).headers["etag"]
    response = s4.send("PATCH", SALES_AREA, {"SalesGroup": "172"}, headers={"If-Match": tag})
    sap_error(response, 412, code="/IWBEP/CM_MGW_RT/190")
    fresh = s4.get(SALES_AREA)
    assert fresh.headers["etag"] != tag
    assert fresh.json()["d"]["SalesGroup"] == "171"
    retry = s4.send(
        "PATCH", SALES_AREA, {"SalesGroup": "172"}, headers={"If-Match": fresh.headers["etag"]}
    )
    assert retry.status_code == 204


def test_seeded_rate_over_200_requests(s4: S4) -> None:
    put_faults(s4, error_rate={500: 0.2}, seed=11)
    statuses = [s4.get("").status_code for _ in range(200)]
    assert 25 <= statuses.count(500) <= 55
    assert statuses.count(500) + statuses.count(200) == 200
    state = faults(s4)
    assert state["counters"]["requests"] == 200
    assert state["error_statuses"] == {"500": statuses.count(500)}
    put_faults(s4, error_rate={500: 0.2}, seed=11)
    assert [s4.get("").status_code for _ in range(200)] == statuses, "same seed, same faults"


def test_admin_routes_are_never_faulted(s4: S4) -> None:
    put_faults(s4, drop_rate=1.0, paths=["/"])
    for method, path in [("GET", "health"), ("GET", "requests"), ("GET", "faults")]:
        assert s4.admin(method, path).status_code == 200
    put_faults(s4, drop_rate=1.0, paths=["/emulator*"])
    assert s4.admin("GET", "health").status_code == 200
    assert s4.get("").status_code == 200, "out of the configured paths"


def test_paths_and_methods_narrow_the_scope(s4: S4) -> None:
    root = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
    put_faults(s4, error_rate={500: 1.0}, paths=[root + "A_Customer(*"])
    assert s4.get("A_Customer").status_code == 200
    sap_error(s4.get("A_Customer('17100001')"), 500)
    put_faults(s4, error_rate={500: 1.0}, methods=["PATCH"])
    assert s4.get(SALES_AREA).status_code == 200
    sap_error(s4.send("PATCH", SALES_AREA, {"SalesGroup": "171"}), 500)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"drop_rate": 1.5}, ["body", "drop_rate"]),
        ({"error_rate": {"500": "often"}}, ["body", "error_rate", "500"]),
        ({"lock_rate": 0.1}, ["body", "lock_rate"]),
        ({"surprise": True}, ["body", "surprise"]),
        ({"methods": ["FETCH"]}, ["body", "methods"]),
    ],
)
def test_put_validation_names_the_field(s4: S4, body: dict[str, Any], location: list[str]) -> None:
    put_faults(s4, latency_ms=1)
    response = httpx2.put(s4.base + "/emulator/faults", json=body, timeout=5.0)
    assert response.status_code == 422, response.text
    assert location in [error["loc"] for error in response.json()["detail"]]
    assert faults(s4)["settings"]["latency_ms"] == 1, "bad input changes nothing"


def test_put_refuses_rates_above_one_in_total(s4: S4) -> None:
    response = httpx2.put(
        s4.base + "/emulator/faults", json={"drop_rate": 0.6, "timeout_rate": 0.6}, timeout=5.0
    )
    assert response.status_code == 422
    assert "timeout_rate=0.6, drop_rate=0.6" in response.text


def test_one_shot_validation(s4: S4) -> None:
    url = s4.base + "/emulator/faults/next"
    for body, where in [
        ({"kind": "lock"}, "kind"),
        ({"kind": "meteor"}, "kind"),
        ({"kind": "drop", "count": 0}, "count"),
    ]:
        response = httpx2.post(url, json=body, timeout=5.0)
        assert response.status_code == 422, body
        assert ["body", where] in [error["loc"] for error in response.json()["detail"]]


def test_get_put_delete_round_trip(s4: S4) -> None:
    state = put_faults(s4, error_rate={503: 0.5}, seed=3, methods=["post"])
    assert state["settings"]["error_rate"] == {"503": 0.5}
    assert state["settings"]["methods"] == ["POST"]
    assert "lock" not in state["supported"]
    next_faults(s4, "drop", 3)
    assert faults(s4)["pending"] == [{"kind": "drop", "remaining": 3, "status": None}]
    cleared = s4.admin("DELETE", "faults").json()
    assert cleared["pending"] == []
    assert cleared["settings"]["error_rate"] == {}
    assert cleared["settings"]["methods"] is None
    assert s4.get("A_Customer").status_code == 200


def test_faults_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(
        "[emulators.s4.faults]\nseed = 5\n[emulators.s4.faults.error_rate]\n503 = 1.0\n",
        encoding="utf-8",
    )
    settings = load_settings(config).emulators.s4
    with serving(create_app(settings), name="s4-config-faults") as server:
        client = S4(server.url)
        try:
            sap_error(client.get("A_Customer"), 503)
            assert client.admin("GET", "faults").json()["settings"]["seed"] == 5
        finally:
            client.close()
