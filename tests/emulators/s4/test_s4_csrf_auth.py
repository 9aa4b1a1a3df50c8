"""CSRF as SAP Gateway does it, and basic authentication on every OData route."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import EmulatorUser, S4EmulatorSettings
from d365sap.web.serving import serving
from emulators.s4.s4_support import S4, sales_area_path

COOKIE = "SAP_SESSIONID_S4H_100"
BODY = {"SalesGroup": "171"}
PATH = sales_area_path("17100002")


def assert_csrf_refused(response: httpx2.Response) -> None:
    assert response.status_code == 403
    assert response.headers["x-csrf-token"] == "Required"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.content == b"CSRF token validation failed"


def test_fetch_returns_a_token_and_session_cookies(s4: S4) -> None:
    response = s4.http.get(s4.root, headers={"X-CSRF-Token": "Fetch"})
    assert response.status_code == 200
    token = response.headers["x-csrf-token"]
    assert len(token) == 24 and token.endswith("==")
    assert response.cookies.get(COOKIE)
    assert response.cookies.get("sap-usercontext") == "sap-client=100"
    again = s4.http.get(s4.root + "$metadata", headers={"X-CSRF-Token": "Fetch"})
    assert again.headers["x-csrf-token"] == token
    head = s4.http.head(s4.root, headers={"X-CSRF-Token": "fetch"})
    assert head.status_code == 200 and head.headers["x-csrf-token"] == token


def test_token_is_not_sent_on_plain_reads(s4: S4) -> None:
    assert "x-csrf-token" not in s4.get("A_Customer").headers


def test_valid_token_and_cookie_pass(s4: S4) -> None:
    s4.fetch_token()
    assert s4.send("PATCH", PATH, BODY).status_code == 204


@pytest.mark.parametrize("method", ["POST", "PATCH", "MERGE", "PUT", "DELETE"])
def test_modifying_request_without_token_is_403(s4: S4, method: str) -> None:
    s4.fetch_token()
    response = s4.http.request(method, s4.root + PATH, json=BODY)
    assert_csrf_refused(response)


def test_wrong_token_is_403(s4: S4) -> None:
    s4.fetch_token()
    response = s4.http.patch(
        s4.root + PATH, json=BODY, headers={"X-CSRF-Token": "AAAAAAAAAAAAAAAAAAAAAA=="}
    )
    assert_csrf_refused(response)


def test_token_without_its_session_cookie_is_403(s4: S4) -> None:
    token = s4.fetch_token()
    stranger = httpx2.Client(auth=s4.http.auth, timeout=10.0)
    try:
        response = stranger.patch(s4.root + PATH, json=BODY, headers={"X-CSRF-Token": token})
        assert_csrf_refused(response)
        stranger.get(s4.root, headers={"X-CSRF-Token": "Fetch"})
        response = stranger.patch(s4.root + PATH, json=BODY, headers={"X-CSRF-Token": token})
        assert_csrf_refused(response)
    finally:
        stranger.close()


def test_expire_on_demand_then_refetch(s4: S4) -> None:
    old = s4.fetch_token()
    expired = s4.admin("POST", "csrf/expire")
    assert expired.status_code == 200 and expired.json()["tokens"] >= 1
    assert_csrf_refused(s4.send("PATCH", PATH, BODY))
    new = s4.fetch_token()
    assert new != old
    assert s4.send("PATCH", PATH, BODY).status_code == 204


def test_refused_writes_are_journaled_and_change_nothing(s4: S4) -> None:
    s4.fetch_token()
    s4.http.patch(s4.root + PATH, json={"SalesGroup": "999"})
    assert s4.get(PATH).json()["d"]["SalesGroup"] == "170"
    journal = s4.admin("GET", "requests").json()["requests"]
    assert [(r["method"], r["status"]) for r in journal] == [("PATCH", 403)]


@pytest.fixture(scope="module")
def short_lived() -> Iterator[S4]:
    settings = S4EmulatorSettings(
        csrf_token_ttl_seconds=0.3,
        users=[
            EmulatorUser(name="S4_COMM_USER", password="Welcome1!"),
            EmulatorUser(name="OTHER", password="pw"),
        ],
    )
    with serving(create_app(settings), name="s4-csrf") as server:
        client = S4(server.url)
        yield client
        client.close()


def test_token_expires_after_its_ttl(short_lived: S4) -> None:
    short_lived.fetch_token()
    assert short_lived.send("PATCH", PATH, BODY).status_code == 204
    time.sleep(0.35)
    assert_csrf_refused(short_lived.send("PATCH", PATH, BODY))
    short_lived.fetch_token()
    assert short_lived.send("PATCH", PATH, BODY).status_code == 204


def test_token_is_bound_to_the_user(short_lived: S4) -> None:
    token = short_lived.fetch_token()
    session = short_lived.http.cookies.get(COOKIE)
    other = httpx2.Client(auth=("OTHER", "pw"), timeout=10.0, cookies={COOKIE: session or ""})
    try:
        response = other.patch(short_lived.root + PATH, json=BODY, headers={"X-CSRF-Token": token})
        assert_csrf_refused(response)
    finally:
        other.close()


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic " + "bm9ib2R5OnNlY3JldA==", "Basic !!!", "Bearer abc", "Basic UzRfQ09NTV9VU0VS"],
)
def test_missing_or_wrong_credentials_are_401(s4: S4, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [
        ("GET", ""),
        ("GET", "$metadata"),
        ("POST", "A_CustomerSalesArea"),
        ("POST", "$batch"),
    ]:
        response = httpx2.request(method, s4.root + path, headers=headers, timeout=10.0)
        assert response.status_code == 401, (method, path)
        realm = 'Basic realm="SAP NetWeaver Application Server [S4H/100]"'
        assert response.headers["www-authenticate"] == realm


def test_authentication_comes_before_csrf(s4: S4) -> None:
    response = httpx2.post(s4.root + "A_CustomerSalesArea", json={}, timeout=10.0)
    assert response.status_code == 401


def test_admin_routes_need_no_credentials(s4: S4) -> None:
    health = s4.admin("GET", "health")
    assert health.status_code == 200
    assert health.json()["entities"]["A_CustomerSalesArea"] == 5
