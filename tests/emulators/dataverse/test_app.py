"""The app around the Web API: bearer tokens, body limit, faults, admin routes, seed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.seed import SeedError
from d365sap.emulators.faults_asgi import ConnectionDroppedError
from d365sap.emulators.settings import DataverseEmulatorSettings
from support.dataverse_api import ACCOUNT_US1, WebApi, error_of, web_api


@pytest.fixture
def api() -> WebApi:
    return web_api()


def test_requests_without_a_valid_token_get_the_401_challenge(api: WebApi) -> None:
    missing = api.get("accounts", authorization=None)
    assert missing.status_code == 401
    challenge = missing.headers["www-authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert "resource_id=https://dataverse.test/" in challenge
    assert api.get("accounts", authorization="Bearer not-a-jwt").status_code == 401
    assert api.get("$metadata", authorization=None).status_code == 401
    api.environment.issuer.resource_url = "https://elsewhere.test"
    assert api.get("accounts").status_code == 401  # token for another environment


def test_writes_without_a_token_change_nothing(api: WebApi) -> None:
    response = api.post("accounts", {"name": "Anonymous"}, authorization=None)
    assert response.status_code == 401
    names = [row["name"] for row in api.get("accounts?$select=name").json()["value"]]
    assert "Anonymous" not in names


def test_token_endpoint_is_served_at_the_root(api: WebApi) -> None:
    tenant = api.environment.issuer.settings.tenant_id
    response = api.request(
        "GET", f"/{tenant}/v2.0/.well-known/openid-configuration", authorization=None
    )
    assert response.status_code == 200
    assert response.json()["token_endpoint"].endswith(f"/{tenant}/oauth2/v2.0/token")


def test_body_limit_is_answered_in_dataverse_format() -> None:
    api = web_api(DataverseEmulatorSettings(max_body_bytes=2048))
    big = {"name": "x", "description": "y" * 4000}
    status, _, message = error_of(api.post("accounts", big))
    assert status == 413
    assert "2048 bytes" in message
    assert api.post("accounts", {"name": "small"}).status_code == 204


def test_injected_errors_and_throttling_use_dataverse_bodies(api: WebApi) -> None:
    shot = api.request(
        "POST", "/emulator/faults/next", json={"kind": "error", "status": 503}, authorization=None
    )
    assert shot.status_code == 200, shot.text
    status, _, message = error_of(api.get("accounts"))
    assert status == 503
    assert message
    api.request("POST", "/emulator/faults/next", json={"kind": "retry_after"}, authorization=None)
    throttled = api.get("accounts")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert error_of(throttled)[1] == "0x80072322"
    assert api.get("accounts").status_code == 200
    health = api.get("/emulator/health", authorization=None)
    assert health.status_code == 200  # admin routes are never faulted


def test_dropped_connection_after_commit_keeps_the_write(api: WebApi) -> None:
    api.request(
        "POST", "/emulator/faults/next", json={"kind": "drop_after_commit"}, authorization=None
    )
    with pytest.raises(ConnectionDroppedError):
        api.post("accounts", {"name": "Committed but unanswered"})
    names = [row["name"] for row in api.get("accounts?$select=name").json()["value"]]
    assert "Committed but unanswered" in names


def test_injected_etag_change_makes_a_conditional_write_fail(api: WebApi) -> None:
    etag = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()["@odata.etag"]
    api.request("POST", "/emulator/faults/next", json={"kind": "etag_change"}, authorization=None)
    refused = api.patch(f"accounts({ACCOUNT_US1})", {"name": "mine"}, headers={"If-Match": etag})
    assert error_of(refused)[:2] == (412, "0x80060882")
    fresh = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()
    assert fresh["@odata.etag"] != etag
    assert fresh["name"] == "Inlandskunde US 1"
    again = api.patch(
        f"accounts({ACCOUNT_US1})", {"name": "mine"}, headers={"If-Match": fresh["@odata.etag"]}
    )
    assert again.status_code == 204


def test_faults_of_other_emulators_are_refused() -> None:
    with pytest.raises(ValueError, match="lock_rate is not available in the Dataverse emulator"):
        DataverseEmulatorSettings.model_validate({"faults": {"lock_rate": 0.5}})
    api = web_api()
    refused = api.request(
        "PUT", "/emulator/faults", json={"csrf_expiry_rate": 0.5}, authorization=None
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "csrf_expiry_rate"]


def test_health_reset_and_rows(api: WebApi) -> None:
    health = api.get("/emulator/health", authorization=None).json()
    assert health["rows"]["account"] == 4
    assert health["rows"]["sap_linkederporg"] == 5
    assert api.post("accounts", {"name": "Temporary"}).status_code == 204
    assert api.get("/emulator/health", authorization=None).json()["rows"]["account"] == 5
    reset = api.request("POST", "/emulator/reset", authorization=None)
    assert reset.json()["rows"]["account"] == 4
    rows = api.get("/emulator/rows/accounts", authorization=None).json()["value"]
    us1 = next(row for row in rows if row["accountid"] == ACCOUNT_US1)
    assert us1["_transactioncurrencyid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == (
        "transactioncurrency"
    )
    assert api.row("accounts", ACCOUNT_US1)["name"] == "Inlandskunde US 1"
    missing = api.get("/emulator/rows/nothing", authorization=None)
    assert missing.status_code == 404


def test_replacing_the_seed(api: WebApi) -> None:
    bad = {"accounts": [{"name": "ok"}, {"name": "bad", "nosuchcolumn": 1}]}
    refused = api.request("PUT", "/emulator/seed", json=bad, authorization=None)
    assert refused.status_code == 422
    assert "accounts[1]" in refused.json()["detail"][0]["msg"]
    assert "nosuchcolumn" in refused.json()["detail"][0]["msg"]
    assert api.get("/emulator/health", authorization=None).json()["rows"]["account"] == 4
    good = {"accounts": [{"name": "Only one", "accountnumber": "ONE"}]}
    assert api.request("PUT", "/emulator/seed", json=good, authorization=None).status_code == 200
    body = api.get("accounts?$select=name").json()
    assert [row["name"] for row in body["value"]] == ["Only one"]
    api.post("accounts", {"name": "Second"})
    api.request("POST", "/emulator/reset", authorization=None)
    assert api.get("accounts/$count").text == "1"


def test_a_seed_file_is_checked_at_start(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "accounts": [
                    {"name": "A", "accountnumber": "K"},
                    {"name": "B", "parentaccountid@odata.bind": "/accounts(accountnumber='K')"},
                ]
            }
        )
    )
    api = WebApi(create_app(DataverseEmulatorSettings(seed_file=seed)))
    rows = api.get("accounts?$select=name,_parentaccountid_value&$orderby=name").json()["value"]
    assert rows[1]["_parentaccountid_value"] == rows[0]["accountid"]
    seed.write_text(
        json.dumps(
            {
                "accounts": [
                    {"name": "B", "parentaccountid@odata.bind": "/accounts(accountnumber='NONE')"}
                ]
            }
        )
    )
    with pytest.raises(SeedError, match=r"accounts\[0\]: A record with the specified key values"):
        create_app(DataverseEmulatorSettings(seed_file=seed))
    seed.write_text("{not json")
    with pytest.raises(SeedError, match="malformed JSON"):
        create_app(DataverseEmulatorSettings(seed_file=seed))
    seed.write_text(json.dumps({"Accounts": []}))
    with pytest.raises(SeedError, match="unknown entity set 'Accounts'"):
        create_app(DataverseEmulatorSettings(seed_file=seed))


def test_seeding_announces_no_changes(api: WebApi) -> None:
    heard: list[str] = []
    api.environment.store.subscribe(lambda change: heard.append(change.row_id))
    api.request("POST", "/emulator/reset", authorization=None)
    assert heard == []
