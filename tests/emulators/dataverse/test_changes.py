"""Change tracking on its own: the log fed by RowChange events, delta tokens and their expiry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from d365sap.emulators.dataverse.changes import (
    BAD_QUERY,
    EXPIRED_MESSAGE,
    EXPIRED_VERSION_STAMP,
    NOT_ENABLED,
    ChangeTracker,
    ChangeTrackingError,
    ChangeTrackingSettings,
    TrackedRead,
    wants_tracking,
)
from d365sap.emulators.dataverse.events import ChangeKind, RowChange
from d365sap.emulators.dataverse.messages import Caller

ROOT = "https://org.example/api/data/v9.2/"
CALLER = Caller(user_id="u-1", client_id="c-1")
A1 = "60c4e274-0d87-e711-80e5-00155db19e6d"
A2 = "2e451703-c686-e711-80e5-00155db19e6d"
A3 = "7f000001-0000-0000-0000-000000000003"


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def read(
    select: list[str] | None = None, *, enabled: bool = True, entity_set: str = "accounts"
) -> TrackedRead:
    return TrackedRead(
        table=entity_set.rstrip("s"),
        entity_set=entity_set,
        key=f"{entity_set.rstrip('s')}id",
        change_tracking_enabled=enabled,
        select=select,
        service_root=ROOT,
    )


def row(account_id: str, name: str, version: int, **extra: Any) -> dict[str, Any]:
    return {
        "@odata.etag": f'W/"{version}"',
        "name": name,
        "telephone1": "555000",
        "fax": "10101",
        "accountid": account_id,
        **extra,
    }


class Feed:
    """Sends RowChange events to a tracker with increasing versions."""

    def __init__(self, tracker: ChangeTracker, clock: Clock, start: int = 900) -> None:
        self.tracker = tracker
        self.clock = clock
        self.version = start

    def __call__(self, kind: ChangeKind, row_id: str, table: str = "account") -> int:
        self.version += 1
        self.tracker(
            RowChange(
                table=table,
                entity_set=f"{table}s",
                row_id=row_id,
                kind=kind,
                before=None if kind == "Create" else {"id": row_id},
                after=None if kind == "Delete" else {"id": row_id},
                version=self.version,
                caller=CALLER,
                request_id="r",
                at=self.clock(),
            )
        )
        return self.version


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> ChangeTracker:
    return ChangeTracker(ChangeTrackingSettings(token_max_age_seconds=3600), clock=clock)


@pytest.fixture
def feed(tracker: ChangeTracker, clock: Clock) -> Feed:
    return Feed(tracker, clock)


def token_of(link: str) -> str:
    values = parse_qs(urlsplit(link).query, keep_blank_values=True)["$deltatoken"]
    return values[0]


def error_of(excinfo: pytest.ExceptionInfo[ChangeTrackingError]) -> tuple[int, dict[str, Any]]:
    response = excinfo.value.response()
    return response.status, json.loads(response.body)["error"]


def test_prefer_header_recognised_among_other_preferences() -> None:
    assert wants_tracking('odata.include-annotations="*", odata.track-changes')
    assert wants_tracking("ODATA.TRACK-CHANGES")
    assert not wants_tracking("odata.maxpagesize=10")
    assert not wants_tracking(None)


def test_initial_read_returns_rows_and_a_delta_link(tracker: ChangeTracker, feed: Feed) -> None:
    feed("Create", A1)
    select = ["name", "accountnumber", "telephone1", "fax"]
    body = tracker.respond(read(select), None, [row(A1, "Monte Orton", 915244, revenue=1.0)])
    document = body.document()
    assert list(document) == ["@odata.context", "@odata.deltaLink", "value"]
    assert (
        document["@odata.context"] == f"{ROOT}$metadata#accounts(name,accountnumber,telephone1,fax)"
    )
    assert document["value"] == [
        {
            "@odata.etag": 'W/"915244"',
            "name": "Monte Orton",
            "telephone1": "555000",
            "fax": "10101",
            "accountid": A1,
        }
    ]
    assert body.headers == {"preference-applied": "odata.track-changes"}
    link = urlsplit(document["@odata.deltaLink"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == ROOT + "accounts"
    assert link.query.startswith("$select=name,accountnumber,telephone1,fax&$deltatoken=")
    raw_token = link.query.split("$deltatoken=", 1)[1]
    assert "!" not in raw_token and " " not in raw_token  # percent-encoded as in Dataverse
    version, created = unquote(raw_token).split("!")[:2]
    assert version == str(feed.version)
    assert created.startswith("11/27/2026 09:00:00")


def test_delta_returns_changed_rows_once_and_deletions(
    tracker: ChangeTracker, feed: Feed, clock: Clock
) -> None:
    feed("Create", A1)
    feed("Create", A2)
    first = tracker.respond(read(["name"]), None, [row(A1, "One", 1), row(A2, "Two", 2)])
    clock.advance(60)
    feed("Update", A1)
    feed("Create", A3)
    feed("Update", A1)
    feed("Delete", A2)
    current = [row(A1, "One again", 5), row(A3, "Three", 4)]
    delta = tracker.respond(read(["name"]), token_of(first.delta_link), current)
    document = delta.document()
    assert document["@odata.context"] == f"{ROOT}$metadata#accounts(name)/$delta"
    assert document["value"] == [
        {"@odata.etag": 'W/"4"', "name": "Three", "accountid": A3},
        {"@odata.etag": 'W/"5"', "name": "One again", "accountid": A1},
        {
            "@odata.context": f"{ROOT}$metadata#accounts/$deletedEntity",
            "id": A2,
            "reason": "deleted",
        },
    ]
    assert delta.headers == {}
    assert tracker.count(read(["name"]), token_of(first.delta_link)) == 3
    # the new link starts after these changes
    again = tracker.respond(read(["name"]), token_of(delta.delta_link), current)
    assert again.value == []
    feed("Update", A3)
    latest = tracker.respond(read(["name"]), token_of(again.delta_link), current)
    assert [item["accountid"] for item in latest.value] == [A3]


def test_changes_of_other_tables_and_of_rows_created_then_deleted(
    tracker: ChangeTracker, feed: Feed
) -> None:
    first = tracker.respond(read(), None, [])
    feed("Create", "c-1", table="contact")
    feed("Create", A1)
    feed("Delete", A1)
    delta = tracker.respond(read(), token_of(first.delta_link), [])
    assert delta.value == [
        {
            "@odata.context": f"{ROOT}$metadata#accounts/$deletedEntity",
            "id": A1,
            "reason": "deleted",
        }
    ]
    assert delta.context == f"{ROOT}$metadata#accounts/$delta"


def test_row_missing_from_current_rows_is_reported_deleted(
    tracker: ChangeTracker, feed: Feed
) -> None:
    first = tracker.respond(read(), None, [])
    feed("Create", A1)
    delta = tracker.respond(read(), token_of(first.delta_link), [])
    assert delta.value[0]["reason"] == "deleted"


def test_without_select_whole_rows_and_case_insensitive_ids(
    tracker: ChangeTracker, feed: Feed
) -> None:
    first = tracker.respond(read(), None, [])
    feed("Update", A1.upper())
    current = row(A1, "x", 7, revenue=3.5)
    delta = tracker.respond(read(), token_of(first.delta_link), [current])
    assert delta.value == [current]
    assert "$select" not in delta.delta_link


def test_token_older_than_max_age_expires(tracker: ChangeTracker, clock: Clock) -> None:
    token = token_of(tracker.respond(read(), None, []).delta_link)
    clock.advance(3599)
    tracker.respond(read(), token, [])
    clock.advance(2)
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), token, [])
    assert error_of(excinfo) == (400, {"code": EXPIRED_VERSION_STAMP, "message": EXPIRED_MESSAGE})
    assert EXPIRED_VERSION_STAMP == "0x80044352"


def test_token_older_than_the_retained_log_expires(clock: Clock) -> None:
    tracker = ChangeTracker(ChangeTrackingSettings(max_changes_per_table=3), clock=clock)
    feed = Feed(tracker, clock)
    feed("Create", A1)
    token = token_of(tracker.respond(read(), None, []).delta_link)
    for _ in range(3):
        feed("Update", A1)
    assert len(tracker.respond(read(), token, [row(A1, "a", 1)]).value) == 1
    feed("Update", A1)  # the change right after the token falls out of the log
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), token, [])
    assert error_of(excinfo)[1]["code"] == EXPIRED_VERSION_STAMP
    assert tracker.usage()["tables"]["account"] == {"changes": 3, "floor_version": feed.version - 3}


def test_other_tables_keep_their_tokens_when_one_log_overflows(clock: Clock) -> None:
    tracker = ChangeTracker(ChangeTrackingSettings(max_changes_per_table=2), clock=clock)
    feed = Feed(tracker, clock)
    token = token_of(tracker.respond(read(entity_set="contacts"), None, []).delta_link)
    for _ in range(5):
        feed("Update", A1)
    feed("Create", "c-9", table="contact")
    delta = tracker.respond(read(entity_set="contacts"), token, [])
    assert [item["id"] for item in delta.value] == ["c-9"]


def test_reset_expires_tokens_issued_before(tracker: ChangeTracker, feed: Feed) -> None:
    feed("Create", A1)
    token = token_of(tracker.respond(read(), None, []).delta_link)
    tracker.reset()
    assert tracker.latest_version == 0
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), token, [])
    assert error_of(excinfo)[1]["message"] == EXPIRED_MESSAGE


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(t.split("!")[0], str(int(t.split("!")[0]) - 5), 1),  # older version
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: "919042!08/22/2017 08:10:44",  # Dataverse-looking, not ours
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_altered_or_foreign_tokens_are_refused(
    tracker: ChangeTracker, feed: Feed, tamper: Any
) -> None:
    feed("Create", A1)
    token = token_of(tracker.respond(read(), None, []).delta_link)
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), tamper(token), [])
    status, error = error_of(excinfo)
    assert (status, error["code"]) == (400, BAD_QUERY)
    assert "$deltatoken" in error["message"]


def test_token_of_another_entity_set_is_refused(tracker: ChangeTracker) -> None:
    token = token_of(tracker.respond(read(entity_set="contacts"), None, []).delta_link)
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), token, [])
    assert "not issued for accounts" in error_of(excinfo)[1]["message"]


def test_token_after_restart_expired_with_same_secret_invalid_with_another(clock: Clock) -> None:
    settings = ChangeTrackingSettings(token_secret="s" * 32)
    token = token_of(ChangeTracker(settings, clock=clock).respond(read(), None, []).delta_link)
    with pytest.raises(ChangeTrackingError) as same_secret:
        ChangeTracker(settings, clock=clock).respond(read(), token, [])
    assert error_of(same_secret)[1]["code"] == EXPIRED_VERSION_STAMP  # a restart: full sync
    with pytest.raises(ChangeTrackingError) as other_secret:
        ChangeTracker(clock=clock).respond(read(), token, [])
    assert error_of(other_secret)[1]["code"] == BAD_QUERY


def test_table_without_change_tracking_is_refused(tracker: ChangeTracker) -> None:
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(enabled=False), None, [])
    assert error_of(excinfo) == (
        400,
        {"code": NOT_ENABLED, "message": "Entity account isn't enabled for change tracking."},
    )


@pytest.mark.parametrize("option", ["$filter", "$orderby", "$expand", "$top", "$TOP"])
def test_query_options_tracking_excludes(tracker: ChangeTracker, option: str) -> None:
    with pytest.raises(ChangeTrackingError) as excinfo:
        tracker.respond(read(), None, [], options=["$select", option])
    expected = (
        f'The "{option.lower()}" query parameter isn\'t supported when Change Tracking is enabled.'
    )
    assert error_of(excinfo)[1]["message"] == expected


def test_as_of_pins_the_token_version(tracker: ChangeTracker, feed: Feed) -> None:
    feed("Create", A1)
    feed("Create", A2)
    body = tracker.respond(read(), None, [row(A1, "a", 1)], as_of=feed.version - 1)
    delta = tracker.respond(read(), token_of(body.delta_link), [row(A1, "a", 1), row(A2, "b", 2)])
    assert [item["accountid"] for item in delta.value] == [A2]


def test_old_changes_leave_the_log_after_the_max_age(
    tracker: ChangeTracker, feed: Feed, clock: Clock
) -> None:
    feed("Create", A1)
    clock.advance(3601)
    feed("Create", A2)
    assert tracker.usage()["tables"]["account"]["changes"] == 1


def test_rows_already_shaped_are_kept_whole(tracker: ChangeTracker, feed: Feed) -> None:
    shaped = row(A1, "a", 1, _transactioncurrencyid_value="c-1")
    first = tracker.respond(read(["name"]), None, [shaped], shape=False)
    assert first.value == [shaped]
    feed("Update", A1)
    delta = tracker.respond(read(["name"]), token_of(first.delta_link), [shaped], shape=False)
    assert delta.value == [shaped]
    assert "$select=name&" in delta.delta_link
