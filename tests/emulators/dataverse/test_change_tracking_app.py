"""Change tracking through the whole app: Prefer: odata.track-changes, delta links, expiry."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote

import pytest

from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from support.dataverse_api import ACCOUNT_US1, ACCOUNT_US2, ROOT, WebApi, error_of, web_api

TRACK = {"Prefer": "odata.track-changes"}
SEED_ACCOUNTS = 4


@pytest.fixture
def api() -> WebApi:
    return web_api()


def follow(api: WebApi, link: str, **kwargs: Any) -> Any:
    assert link.startswith(ROOT), link
    return api.get(link[len(ROOT) :], **kwargs)


def created_id(response: Any) -> str:
    assert response.status_code == 204, response.text
    return str(response.headers["odata-entityid"]).rsplit("(", 1)[1].rstrip(")")


def test_initial_read_then_changes_since(api: WebApi) -> None:
    first = api.get("accounts?$select=name,accountnumber", headers=TRACK)
    assert first.status_code == 200, first.text
    assert first.headers["preference-applied"] == "odata.track-changes"
    document = first.json()
    assert list(document) == ["@odata.context", "@odata.deltaLink", "value"]
    assert document["@odata.context"] == f"{ROOT}$metadata#accounts(name,accountnumber)"
    assert len(document["value"]) == SEED_ACCOUNTS
    assert all(row["@odata.etag"].startswith('W/"') for row in document["value"])
    assert set(document["value"][0]) == {"@odata.etag", "name", "accountnumber", "accountid"}
    link = document["@odata.deltaLink"]
    assert link.startswith(f"{ROOT}accounts?$select=name,accountnumber&$deltatoken=")

    doomed = created_id(api.post("accounts", {"name": "Short-lived"}))
    new = created_id(api.post("accounts", {"name": "Tracked newcomer", "accountnumber": "T-1"}))
    assert api.patch(f"accounts({ACCOUNT_US1})", {"telephone1": "555"}).status_code == 204
    assert api.patch(f"accounts({ACCOUNT_US1})", {"name": "Renamed"}).status_code == 204
    assert api.delete(f"accounts({doomed})").status_code == 204

    delta = follow(api, link)
    assert delta.status_code == 200, delta.text
    assert "preference-applied" not in delta.headers
    changes = delta.json()
    assert changes["@odata.context"] == f"{ROOT}$metadata#accounts(name,accountnumber)/$delta"
    rows = [item for item in changes["value"] if "reason" not in item]
    deleted = [item for item in changes["value"] if "reason" in item]
    assert [(row["accountid"], row["name"]) for row in rows] == [
        (new, "Tracked newcomer"),
        (ACCOUNT_US1, "Renamed"),  # once, in its latest state
    ]
    assert "telephone1" not in rows[1]  # $select honoured
    current = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()
    assert rows[1]["@odata.etag"] == current["@odata.etag"]
    assert deleted == [
        {
            "@odata.context": f"{ROOT}$metadata#accounts/$deletedEntity",
            "id": doomed,
            "reason": "deleted",
        }
    ]
    assert unquote(changes["@odata.deltaLink"]) != unquote(link)

    token = quote(unquote(link.split("$deltatoken=", 1)[1]), safe="")
    count = api.get(f"accounts/$count?$deltatoken={token}")
    assert (count.status_code, count.text) == (200, "3")
    plain_count = api.get("accounts/$count", headers=TRACK)
    assert plain_count.text == str(SEED_ACCOUNTS + 1)

    quiet = follow(api, changes["@odata.deltaLink"]).json()
    assert quiet["value"] == []
    assert quiet["@odata.deltaLink"].startswith(f"{ROOT}accounts?$select=name,accountnumber&")


def test_cascaded_deletes_and_annotations_in_a_delta(api: WebApi) -> None:
    prefer = (
        'odata.track-changes,odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
    )
    first = api.get("accounts?$select=name,statecode", headers={"Prefer": prefer})
    assert "odata.track-changes" in first.headers["preference-applied"]
    assert "statecode@OData.Community.Display.V1.FormattedValue" in first.json()["value"][0]
    parent = created_id(api.post("accounts", {"name": "Parent to go"}))
    contacts_link = api.get("contacts?$select=fullname", headers=TRACK).json()["@odata.deltaLink"]
    child = created_id(
        api.post(
            "contacts",
            {"lastname": "Child", "parentcustomerid_account@odata.bind": f"/accounts({parent})"},
        )
    )
    assert api.delete(f"accounts({parent})").status_code == 204  # contacts cascade
    gone = follow(api, contacts_link).json()["value"]
    assert gone == [
        {
            "@odata.context": f"{ROOT}$metadata#contacts/$deletedEntity",
            "id": child,
            "reason": "deleted",
        }
    ]
    delta = follow(api, first.json()["@odata.deltaLink"], headers={"Prefer": prefer}).json()
    assert [item.get("id") for item in delta["value"]] == [parent]


@pytest.mark.parametrize(
    "option", ["$filter=name ne null", "$orderby=name", "$top=1", "$expand=primarycontactid"]
)
def test_query_options_change_tracking_refuses(api: WebApi, option: str) -> None:
    name = option.split("=", 1)[0]
    expected = f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    status, code, message = error_of(api.get(f"accounts?{option}", headers=TRACK))
    assert (status, code, message) == (400, "0x80060888", expected)
    link = api.get("accounts", headers=TRACK).json()["@odata.deltaLink"]
    refused = follow(api, f"{link}&{option}")  # with the token, without the header
    assert error_of(refused) == (400, "0x80060888", expected)


def test_bad_select_is_refused_as_in_any_read(api: WebApi) -> None:
    status, _, message = error_of(api.get("accounts?$select=nosuchcolumn", headers=TRACK))
    assert status == 400
    assert "nosuchcolumn" in message


def test_tampered_and_foreign_tokens(api: WebApi) -> None:
    link = api.get("accounts", headers=TRACK).json()["@odata.deltaLink"]
    token = unquote(link.split("$deltatoken=", 1)[1])
    version, rest = token.split("!", 1)
    forged = quote(f"{int(version) - 10}!{rest}", safe="")
    status, code, message = error_of(api.get(f"accounts?$deltatoken={forged}"))
    assert (status, code) == (400, "0x80060888")
    assert "$deltatoken" in message
    status, code, _ = error_of(api.get(f"contacts?$deltatoken={quote(token, safe='')}"))
    assert (status, code) == (400, "0x80060888")


def test_reset_expires_delta_tokens(api: WebApi) -> None:
    link = api.get("accounts", headers=TRACK).json()["@odata.deltaLink"]
    assert api.request("POST", "/emulator/reset", authorization=None).status_code == 200
    assert error_of(follow(api, link)) == (
        400,
        "0x80044352",
        "Version stamp associated with the client has expired. Please perform a full sync.",
    )


def test_tokens_expire_after_the_configured_age() -> None:
    settings = DataverseEmulatorSettings(
        change_tracking=ChangeTrackingSettings(token_max_age_seconds=0.5)
    )
    api = web_api(settings)
    link = api.get("accounts", headers=TRACK).json()["@odata.deltaLink"]
    assert follow(api, link).status_code == 200
    time.sleep(0.7)
    assert error_of(follow(api, link))[:2] == (400, "0x80044352")


def test_an_injected_concurrent_change_is_tracked(api: WebApi) -> None:
    link = api.get("accounts?$select=name", headers=TRACK).json()["@odata.deltaLink"]
    api.request("POST", "/emulator/faults/next", json={"kind": "etag_change"}, authorization=None)
    etag = api.get(f"accounts({ACCOUNT_US2})?$select=name").json()["@odata.etag"]
    api.patch(f"accounts({ACCOUNT_US2})", {"name": "x"}, headers={"If-Match": etag})
    # the injected concurrent change is a change like any other
    delta = follow(api, link).json()["value"]
    assert [row["accountid"] for row in delta] == [ACCOUNT_US2]
    assert delta[0]["name"] != "x"


def test_a_table_without_change_tracking_refuses_track_changes(api: WebApi) -> None:
    refused = api.get("uoms?$select=name", headers=TRACK)

    assert error_of(refused) == (
        400,
        "0x80072491",
        "Entity uom isn't enabled for change tracking.",
    )
    plain = api.get("uoms?$select=name")
    assert plain.status_code == 200, plain.text


def test_metadata_marks_only_tracked_entity_sets(api: WebApi) -> None:
    document = api.get("$metadata?annotations=true").text
    sets = document.split("<EntitySet ")
    tracked = {
        s.split('"', 2)[1]
        for s in sets[1:]
        if "Capabilities.V1.ChangeTracking" in s.split("</EntitySet>")[0]
    }
    assert "accounts" in tracked
    assert "uoms" not in tracked
    assert "pricelevels" not in tracked
