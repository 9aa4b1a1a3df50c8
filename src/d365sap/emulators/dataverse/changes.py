"""Change tracking: a bounded change log per table and the delta tokens of ``@odata.deltaLink``.

A client that sends ``Prefer: odata.track-changes`` on a collection read gets the current rows
plus a delta link; following the link returns only what was created, changed or deleted since,
and a new link. The store announces every committed change as a :class:`RowChange`; this module
keeps, per table, the version, row id and kind of the newest changes (bounded, so a long-running
emulator does not grow without end) and answers delta requests from that log and the rows the
core read for it. It never reads the store itself, so it stays testable without one.

Tokens keep Dataverse's visible shape (``<version>!<creation time>``) and add the log's epoch and
an HMAC, so a client cannot move its version by editing the token, and a token from before a
reset (or from another entity set) is refused instead of silently answered wrong. A token is
expired (Dataverse's ``ExpiredVersionStamp``) when it is older than ``token_max_age_seconds``
(Dataverse's ``Organization.ExpireChangeTrackingInDays``, 7 days by default), when the log has
already dropped changes it would need, or when the log was reset after it was issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from d365sap.emulators.dataverse.events import ChangeKind, RowChange
from d365sap.emulators.dataverse.messages import WebApiResponse

TRACK_CHANGES = "odata.track-changes"
DELTA_TOKEN = "$deltatoken"
UNSUPPORTED_OPTIONS = ("$filter", "$orderby", "$expand", "$top")

# Dataverse's codes (web service error codes reference)
EXPIRED_VERSION_STAMP = "0x80044352"
EXPIRED_MESSAGE = (
    "Version stamp associated with the client has expired. Please perform a full sync."
)
NOT_ENABLED = "0x80072491"  # ChangeTrackingNotEnabledForEntity
# The code the Web API gives a query option it cannot accept (as the query package does).
BAD_QUERY = "0x80060888"

_TIME_FORMAT = "%m/%d/%Y %H:%M:%S.%f"


class ChangeTrackingSettings(BaseModel):
    """How long delta tokens stay valid and how many changes each table's log keeps."""

    model_config = ConfigDict(extra="forbid")

    token_max_age_seconds: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="age after which a delta token is expired (Dataverse: "
        "Organization.ExpireChangeTrackingInDays, 7 days by default)",
    )
    max_changes_per_table: int = Field(
        default=50_000,
        ge=1,
        description="changes kept per table; a token older than the oldest kept change is expired",
    )
    token_secret: str | None = Field(
        default=None,
        min_length=16,
        description="HMAC key of delta tokens; random per process when not set",
    )


class ChangeTrackingError(Exception):
    """A delta request the service refuses, in Dataverse's error format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> WebApiResponse:
        """The Web API reply for this error."""
        return WebApiResponse.error(self.status, self.code, self.message)


@dataclass(frozen=True)
class TrackedRead:
    """What the core knows about a change-tracking read of one collection.

    ``key`` is the primary id column (``accountid``); ``select`` the ``$select`` columns in the
    client's order, or ``None`` for all; ``service_root`` ends with ``/api/data/v9.2/``.
    """

    table: str
    entity_set: str
    key: str
    change_tracking_enabled: bool
    select: Sequence[str] | None
    service_root: str


@dataclass
class DeltaBody:
    """The parts of a change-tracking reply: context, rows (or deletions) and the next link."""

    context: str
    value: list[dict[str, Any]]
    delta_link: str
    headers: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The JSON body, members in the order Dataverse writes them."""
        return {
            "@odata.context": self.context,
            "@odata.deltaLink": self.delta_link,
            "value": self.value,
        }


@dataclass(frozen=True)
class _Entry:
    version: int
    row_id: str
    kind: ChangeKind
    at: datetime


@dataclass(frozen=True)
class _Token:
    version: int
    created: datetime


def wants_tracking(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks for ``odata.track-changes``."""
    if not prefer:
        return False
    return any(part.strip().lower() == TRACK_CHANGES for part in prefer.split(","))


def select_columns(
    row: Mapping[str, Any], select: Sequence[str] | None, key: str
) -> dict[str, Any]:
    """The row reduced to ``$select``: annotations of the row, the key and the selected columns.

    Idempotent, so rows the core already reduced come out unchanged.
    """
    if select is None:
        return dict(row)
    wanted = {*select, key}
    kept: dict[str, Any] = {}
    for name, value in row.items():
        column = name.split("@", 1)[0]
        if name.startswith("@") or column in wanted:
            kept[name] = value
    return kept


class ChangeTracker:
    """The change log of every table and the issuer and judge of delta tokens.

    Subscribe an instance to the store (it is a :class:`ChangeListener`); call :meth:`respond`
    from the collection read when the request asks for tracking or carries a ``$deltatoken``.
    Thread-safe: the store may announce changes from another thread than the one reading.
    """

    def __init__(
        self,
        settings: ChangeTrackingSettings | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or ChangeTrackingSettings()
        self._clock = clock
        secret = self.settings.token_secret or secrets.token_urlsafe(32)
        self._key = secret.encode("utf-8")
        self._lock = threading.Lock()
        self._logs: dict[str, deque[_Entry]] = {}
        self._floors: dict[str, int] = {}
        self._latest = 0
        self._epoch = secrets.token_hex(4)

    # the log ------------------------------------------------------------------------------

    def __call__(self, change: RowChange) -> None:
        """Record one committed change (the store's listener)."""
        entry = _Entry(change.version, change.row_id, change.kind, change.at)
        with self._lock:
            log = self._logs.setdefault(change.table, deque())
            log.append(entry)
            self._latest = max(self._latest, change.version)
            self._trim(change.table, log)

    def _trim(self, table: str, log: deque[_Entry]) -> None:
        """Drop changes beyond the size bound or older than any valid token could need."""
        horizon = self._clock() - timedelta(seconds=self.settings.token_max_age_seconds)
        while log and (len(log) > self.settings.max_changes_per_table or log[0].at < horizon):
            dropped = log.popleft()
            self._floors[table] = max(self._floors.get(table, 0), dropped.version)

    def reset(self) -> None:
        """Forget every change; tokens issued so far become expired (the data was re-seeded)."""
        with self._lock:
            self._logs.clear()
            self._floors.clear()
            self._latest = 0
            self._epoch = secrets.token_hex(4)

    @property
    def latest_version(self) -> int:
        """The highest version announced so far."""
        with self._lock:
            return self._latest

    def usage(self) -> dict[str, Any]:
        """Changes kept per table and the oldest version each log can still answer from."""
        with self._lock:
            return {
                "latest_version": self._latest,
                "tables": {
                    table: {"changes": len(log), "floor_version": self._floors.get(table, 0)}
                    for table, log in sorted(self._logs.items())
                },
            }

    # tokens -------------------------------------------------------------------------------

    def _mac(self, entity_set: str, version: int, created: str, epoch: str) -> str:
        message = f"{entity_set}|{version}|{created}|{epoch}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode("ascii")

    def issue(self, entity_set: str, version: int) -> str:
        """A delta token for ``entity_set`` taken at ``version``, now."""
        created = self._clock().astimezone(UTC).strftime(_TIME_FORMAT)[:-3]
        with self._lock:
            epoch = self._epoch
        return f"{version}!{created}!{epoch}!{self._mac(entity_set, version, created, epoch)}"

    def _verify(self, read: TrackedRead, token: str) -> _Token:
        parts = token.split("!")
        if len(parts) != 4 or not parts[0].isdigit():
            raise _invalid(read, "it is not a delta token of this service")
        version_text, created_text, epoch, mac = parts
        version = int(version_text)
        expected = self._mac(read.entity_set, version, created_text, epoch)
        if not hmac.compare_digest(mac, expected):
            raise _invalid(read, f"it was not issued for {read.entity_set} or has been altered")
        try:
            created = datetime.strptime(created_text + "000", _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _invalid(read, "its creation time cannot be read") from None
        with self._lock:
            stale_epoch = epoch != self._epoch
            floor = self._floors.get(read.table, 0)
        age = (self._clock() - created).total_seconds()
        if stale_epoch or version < floor or age > self.settings.token_max_age_seconds:
            raise ChangeTrackingError(400, EXPIRED_VERSION_STAMP, EXPIRED_MESSAGE)
        return _Token(version, created)

    # requests -----------------------------------------------------------------------------

    @staticmethod
    def check_query(read: TrackedRead, options: Iterable[str]) -> None:
        """Refuse tables without change tracking and the query options tracking excludes."""
        if not read.change_tracking_enabled:
            raise ChangeTrackingError(
                400, NOT_ENABLED, f"Entity {read.table} isn't enabled for change tracking."
            )
        given = {option.lower() for option in options}
        for option in UNSUPPORTED_OPTIONS:
            if option in given:
                raise ChangeTrackingError(
                    400,
                    BAD_QUERY,
                    f'The "{option}" query parameter isn\'t supported when Change Tracking is '
                    "enabled.",
                )

    def respond(
        self,
        read: TrackedRead,
        token: str | None,
        rows: Iterable[Mapping[str, Any]],
        *,
        options: Iterable[str] = (),
        as_of: int | None = None,
        shape: bool = True,
    ) -> DeltaBody:
        """The reply to a tracked read: all ``rows`` without a token, the changes since with one.

        ``rows`` are the table's current rows as the core serialises them (``@odata.etag``, the
        key, formatted values...); ``shape`` reduces them to ``$select`` (pass False for rows
        already shaped); ``options`` the names of the query options in the request; ``as_of``
        the store's version when the rows were read (default: the newest announced).
        Raises :class:`ChangeTrackingError` for a refused request.
        """
        self.check_query(read, options)
        version = self.latest_version if as_of is None else as_of
        link = self._delta_link(read, self.issue(read.entity_set, version))
        select = read.select if shape else None
        if token is None:
            value = [select_columns(row, select, read.key) for row in rows]
            context = f"{read.service_root}$metadata#{read.entity_set}{_columns(read.select)}"
            return DeltaBody(context, value, link, {"preference-applied": TRACK_CHANGES})
        since = self._verify(read, token)
        value = self._changes(read, since.version, version, rows, select)
        context = f"{read.service_root}$metadata#{read.entity_set}{_columns(read.select)}/$delta"
        return DeltaBody(context, value, link)

    def count(self, read: TrackedRead, token: str) -> int:
        """How many rows a delta request with ``token`` would return (``/$count?$deltatoken``)."""
        self.check_query(read, ())
        since = self._verify(read, token)
        return len(self._latest_changes(read.table, since.version, self.latest_version))

    def _latest_changes(self, table: str, since: int, until: int) -> list[_Entry]:
        """Each changed row once, its newest change, oldest first."""
        with self._lock:
            entries = [e for e in self._logs.get(table, ()) if since < e.version <= until]
        newest: dict[str, _Entry] = {}
        for entry in entries:
            newest.pop(entry.row_id, None)
            newest[entry.row_id] = entry
        return sorted(newest.values(), key=lambda entry: entry.version)

    def _changes(
        self,
        read: TrackedRead,
        since: int,
        until: int,
        rows: Iterable[Mapping[str, Any]],
        select: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        current = {str(row.get(read.key, "")).lower(): row for row in rows}
        value: list[dict[str, Any]] = []
        for entry in self._latest_changes(read.table, since, until):
            row = current.get(entry.row_id.lower())
            if entry.kind == "Delete" or row is None:
                value.append(
                    {
                        "@odata.context": (
                            f"{read.service_root}$metadata#{read.entity_set}/$deletedEntity"
                        ),
                        "id": entry.row_id,
                        "reason": "deleted",
                    }
                )
            else:
                value.append(select_columns(row, select, read.key))
        return value

    @staticmethod
    def _delta_link(read: TrackedRead, token: str) -> str:
        query = f"$select={','.join(read.select)}&" if read.select else ""
        return f"{read.service_root}{read.entity_set}?{query}$deltatoken={quote(token, safe='')}"


def _columns(select: Sequence[str] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _invalid(read: TrackedRead, why: str) -> ChangeTrackingError:
    return ChangeTrackingError(
        400, BAD_QUERY, f"The $deltatoken value is not valid for {read.entity_set}: {why}."
    )
