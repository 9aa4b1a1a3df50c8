"""Fault injection settings and the decision engine both emulators share.

The durable delivery work has to show that d365sap neither loses nor duplicates a document when
SAP misbehaves: errors, throttling, slow answers, hanging requests, dropped connections and, above
all, answers lost after the write was committed. The emulators are the only SAP systems a test can
make misbehave on purpose, so each of them takes :class:`FaultSettings` from its configuration
(``[emulators.s4.faults]``, ``[emulators.erp.faults]``) and, at run time, from ``/emulator/faults``.

This module knows nothing about HTTP or ASGI: it validates the settings, keeps the one-shot queue
and the counters, and decides (thread-safe, optionally from a seed) which fault a request gets.
``faults_asgi`` carries the decision out; each emulator renders it in its own error format.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ADMIN_PREFIX = "/emulator"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE", "OPTIONS"})
_GLOB_CHARACTERS = frozenset("*?[")


class FaultKind(StrEnum):
    """Mutually exclusive faults: a request gets at most one of them (latency comes on top)."""

    ERROR = "error"
    LOCK = "lock"
    RETRY_AFTER = "retry_after"
    TIMEOUT = "timeout"
    DROP = "drop"
    DROP_AFTER_COMMIT = "drop_after_commit"
    CSRF_EXPIRY = "csrf_expiry"
    ETAG_CHANGE = "etag_change"


_RATE_FIELDS: dict[FaultKind, str] = {
    FaultKind.LOCK: "lock_rate",
    FaultKind.RETRY_AFTER: "retry_after_rate",
    FaultKind.TIMEOUT: "timeout_rate",
    FaultKind.DROP: "drop_rate",
    FaultKind.DROP_AFTER_COMMIT: "drop_after_commit_rate",
    FaultKind.CSRF_EXPIRY: "csrf_expiry_rate",
    FaultKind.ETAG_CHANGE: "etag_change_rate",
}
S4_KINDS = frozenset(FaultKind) - {FaultKind.LOCK}
"""What the S/4HANA Cloud emulator can inject (an ERP lock has no OData counterpart here)."""
ERP_KINDS = frozenset(FaultKind) - {FaultKind.CSRF_EXPIRY, FaultKind.ETAG_CHANGE}
"""What the ERP emulator can inject (IDoc inbound has neither CSRF tokens nor ETags)."""

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class FaultSettings(BaseModel):
    """Which faults an emulator injects, and how often; everything is off by default.

    Rates are probabilities per request in scope (``paths``, ``methods``). The exclusive faults
    are drawn with one random number per request, so each happens with exactly its rate among the
    requests it applies to, and their rates may add up to 1 at most.
    """

    model_config = ConfigDict(extra="forbid")

    error_rate: dict[int, Rate] = Field(
        default_factory=dict,
        description="HTTP status -> probability, answered in the emulator's own error format",
    )
    lock_rate: Rate = Field(default=0.0, description="ERP only: the customer is locked (500)")
    retry_after_rate: Rate = Field(
        default=0.0, description="throttling: S/4 429, ERP 503, with a Retry-After header"
    )
    retry_after_seconds: int = Field(default=2, ge=0, le=86_400)
    latency_ms: int = Field(default=0, ge=0, le=600_000, description="added to every request")
    latency_jitter_ms: int = Field(
        default=0, ge=0, le=600_000, description="plus a uniform random 0..jitter"
    )
    timeout_rate: Rate = Field(default=0.0, description="hold the request without answering")
    timeout_seconds: float = Field(
        default=90.0, gt=0, le=3600, description="how long; longer than the client's timeout"
    )
    timeout_action: Literal["gateway_timeout", "drop"] = Field(
        default="gateway_timeout", description="after holding: answer 504 or drop the connection"
    )
    drop_rate: Rate = Field(default=0.0, description="reset the connection, no HTTP answer")
    drop_after_commit_rate: Rate = Field(
        default=0.0, description="modifying requests: process them, then reset the connection"
    )
    csrf_expiry_rate: Rate = Field(
        default=0.0, description="S/4 only: the caller's CSRF token expires just before the check"
    )
    etag_change_rate: Rate = Field(
        default=0.0, description="S/4 only: the entity changes before a conditional write (412)"
    )
    paths: list[str] | None = Field(
        default=None,
        description="path prefixes or globs in scope; default: the business endpoints",
    )
    methods: list[str] | None = Field(default=None, description="methods in scope; default all")
    seed: int | None = Field(default=None, description="seed of the random generator")

    @field_validator("error_rate")
    @classmethod
    def _error_statuses(cls, value: dict[int, float]) -> dict[int, float]:
        wrong = sorted(status for status in value if not 400 <= status <= 599)
        if wrong:
            raise ValueError(f"status {wrong[0]} is not an error status (400-599)")
        return value

    @field_validator("paths")
    @classmethod
    def _absolute_paths(cls, value: list[str] | None) -> list[str] | None:
        for path in value or []:
            if not path.startswith("/"):
                raise ValueError(f"path '{path}' must start with '/'")
        return value

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        methods = [method.upper() for method in value]
        unknown = [method for method in methods if method not in KNOWN_METHODS]
        if unknown:
            raise ValueError(f"unknown method '{unknown[0]}'; one of {sorted(KNOWN_METHODS)}")
        return methods

    @model_validator(mode="after")
    def _at_most_one_fault(self) -> FaultSettings:
        parts = [(f"error_rate[{s}]", r) for s, r in sorted(self.error_rate.items()) if r > 0]
        parts += [(name, getattr(self, name)) for name in _RATE_FIELDS.values()]
        used = [(name, rate) for name, rate in parts if rate > 0]
        total = sum(rate for _, rate in used)
        if total > 1.0 + 1e-9:
            listed = ", ".join(f"{name}={rate:g}" for name, rate in used)
            raise ValueError(f"rates add up to {total:g} ({listed}); at most 1 in total")
        return self

    def rate(self, kind: FaultKind) -> float:
        """The probability of ``kind`` (for ``error``: all statuses together)."""
        if kind is FaultKind.ERROR:
            return sum(self.error_rate.values())
        return float(getattr(self, _RATE_FIELDS[kind]))

    def unsupported(self, supported: frozenset[FaultKind]) -> list[tuple[str, str]]:
        """``(field, reason)`` for every rate set on a kind this emulator cannot inject."""
        return [
            (field, f"{kind.value} faults are not available in this emulator")
            for kind, field in _RATE_FIELDS.items()
            if kind not in supported and getattr(self, field) > 0
        ]


class OneShot(BaseModel):
    """``POST /emulator/faults/next``: the next ``count`` requests it applies to get ``kind``.

    Deterministic tests cannot wait for a random number to come up; this queue lets a test say
    "lose the answer of the next write" and know exactly which request it hits.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(default=1, ge=1, le=100_000)
    status: int | None = Field(
        default=None, ge=400, le=599, description="for kind 'error' (default 500)"
    )

    @model_validator(mode="after")
    def _status_only_for_errors(self) -> OneShot:
        if self.status is not None and self.kind is not FaultKind.ERROR:
            raise ValueError("status applies to kind 'error' only")
        return self


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the decision needs to know about one request.

    ``method`` is the effective method (S/4's ``X-HTTP-Method`` tunnelling resolved);
    ``modifying`` marks a write; ``conditional`` a write on one entity with an ``If-Match``.
    """

    method: str
    path: str
    modifying: bool = False
    conditional: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject, with the parameters in force when it was decided."""

    kind: FaultKind
    status: int = 500
    retry_after_seconds: int = 2
    timeout_seconds: float = 90.0
    timeout_action: str = "gateway_timeout"


@dataclass(frozen=True, slots=True)
class Decision:
    """Added latency (seconds) and the fault, if any, for one request in scope."""

    delay: float
    fault: Fault | None


def applies(kind: FaultKind, facts: RequestFacts) -> bool:
    """Whether ``kind`` makes sense for the request (e.g. a lost commit needs a write)."""
    if kind in (FaultKind.DROP_AFTER_COMMIT, FaultKind.CSRF_EXPIRY):
        return facts.modifying
    if kind is FaultKind.ETAG_CHANGE:
        return facts.conditional
    return True


def _path_matches(path: str, pattern: str) -> bool:
    if _GLOB_CHARACTERS & set(pattern):
        return fnmatchcase(path, pattern)
    return path.startswith(pattern)


def is_admin(path: str) -> bool:
    """``/emulator`` and everything below it: never faulted, so tests can always steer."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class FaultController:
    """Current settings, one-shot queue and counters of one emulator, behind one lock.

    uvicorn serves the emulator from a thread beside the test, and the admin routes run in a
    thread pool, so every read and change of this state takes the lock.
    """

    def __init__(
        self,
        settings: FaultSettings,
        supported: frozenset[FaultKind],
        business_path: Callable[[str], bool],
    ) -> None:
        self.supported = supported
        self._business_path = business_path
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random.Random(settings.seed)
        self._pending: list[tuple[OneShot, int]] = []
        self._counters: dict[str, int] = {}
        self._statuses: dict[int, int] = {}

    @property
    def settings(self) -> FaultSettings:
        """The settings in force."""
        with self._lock:
            return self._settings

    def replace(self, settings: FaultSettings) -> None:
        """New settings (and a generator re-seeded from them); queue and counters stay."""
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)

    def clear(self) -> None:
        """Everything off: default settings, empty queue, counters back to zero."""
        with self._lock:
            self._settings = FaultSettings()
            self._random = random.Random()
            self._pending.clear()
            self._counters.clear()
            self._statuses.clear()

    def queue(self, shot: OneShot) -> None:
        """Append a one-shot fault; queued faults are served first come, first served."""
        with self._lock:
            self._pending.append((shot, shot.count))

    def in_scope(self, facts: RequestFacts) -> bool:
        """Whether faults may touch the request at all (admin routes never)."""
        with self._lock:
            return self._in_scope(facts, self._settings)

    def _in_scope(self, facts: RequestFacts, settings: FaultSettings) -> bool:
        if is_admin(facts.path):
            return False
        if settings.methods is not None and facts.method not in settings.methods:
            return False
        if settings.paths is None:
            return self._business_path(facts.path)
        return any(_path_matches(facts.path, pattern) for pattern in settings.paths)

    def decide(self, facts: RequestFacts) -> Decision | None:
        """Latency and fault for one request; None when the request is out of scope."""
        with self._lock:
            settings = self._settings
            if not self._in_scope(facts, settings):
                return None
            self._count("requests")
            delay = settings.latency_ms / 1000
            if settings.latency_jitter_ms:
                delay += self._random.uniform(0, settings.latency_jitter_ms) / 1000
            if delay > 0:
                self._count("latency")
            fault = self._one_shot(facts, settings) or self._drawn(facts, settings)
            if fault is not None:
                self._count(fault.kind.value)
                if fault.kind is FaultKind.ERROR:
                    self._statuses[fault.status] = self._statuses.get(fault.status, 0) + 1
            return Decision(delay, fault)

    def snapshot(self) -> dict[str, Any]:
        """Settings, queue and counters as JSON, for ``GET /emulator/faults``."""
        with self._lock:
            names = ["requests", "latency"] + [k.value for k in FaultKind if k in self.supported]
            counters = {name: self._counters.get(name, 0) for name in names}
            return {
                "settings": self._settings.model_dump(mode="json"),
                "supported": sorted(kind.value for kind in self.supported),
                "pending": [
                    {"kind": shot.kind.value, "remaining": left, "status": shot.status}
                    for shot, left in self._pending
                ],
                "counters": counters,
                "error_statuses": {str(s): n for s, n in sorted(self._statuses.items())},
            }

    def _count(self, name: str) -> None:
        self._counters[name] = self._counters.get(name, 0) + 1

    def _one_shot(self, facts: RequestFacts, settings: FaultSettings) -> Fault | None:
        for index, (shot, left) in enumerate(self._pending):
            if not applies(shot.kind, facts):
                continue
            if left > 1:
                self._pending[index] = (shot, left - 1)
            else:
                del self._pending[index]
            return _fault(shot.kind, settings, shot.status or 500)
        return None

    def _drawn(self, facts: RequestFacts, settings: FaultSettings) -> Fault | None:
        errors = sorted(settings.error_rate.items())
        candidates = [(FaultKind.ERROR, status, rate) for status, rate in errors]
        candidates += [(kind, 500, settings.rate(kind)) for kind in _RATE_FIELDS]
        live = [
            (kind, status, rate)
            for kind, status, rate in candidates
            if rate > 0 and kind in self.supported and applies(kind, facts)
        ]
        if not live:
            return None
        draw = self._random.random()
        edge = 0.0
        for kind, status, rate in live:
            edge += rate
            if draw < edge:
                return _fault(kind, settings, status)
        return None


def _fault(kind: FaultKind, settings: FaultSettings, status: int) -> Fault:
    return Fault(
        kind=kind,
        status=status,
        retry_after_seconds=settings.retry_after_seconds,
        timeout_seconds=settings.timeout_seconds,
        timeout_action=settings.timeout_action,
    )
