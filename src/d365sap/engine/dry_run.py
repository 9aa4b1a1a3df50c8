"""The dry-run vocabulary shared by the engine and the flows: what processing would do now.

An operator about to retry or resubmit a dead letter wants to know, before anything is written,
whether the message would now go through: the request the flow would send (method, URL, exact
body), or the field and reason that stop it. Flows that can answer without side effects implement
:class:`DryRunFlow`; the engine only carries the report, it does not interpret the target's terms.
The protocol lives here rather than on the engine's ``Flow`` so that flows without a dry run stay
valid flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Outcomes that mean "this would not go through"; any other outcome is a plan that would
# (the flow names those, e.g. ``would_create``).
INVALID = "invalid"
WOULD_FAIL = "would_fail"
CHECK_FAILED = "check_failed"
UNSUPPORTED = "unsupported"
FAILING_OUTCOMES = frozenset({INVALID, WOULD_FAIL, CHECK_FAILED, UNSUPPORTED})


@dataclass(frozen=True)
class Problem:
    """One reason a dry run would not go through: the field at fault (if any) and why."""

    field: str | None
    message: str


@dataclass(frozen=True)
class PlannedRequest:
    """The request a flow would send: method, URL, content type and the exact body."""

    method: str
    url: str
    content_type: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DryRunReport:
    """What processing a payload would do now, found out without writing anywhere."""

    outcome: str
    summary: str
    flow: str
    route: str | None = None
    target: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    request: PlannedRequest | None = None
    problems: tuple[Problem, ...] = ()
    checks: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the message would go through as planned."""
        return self.outcome not in FAILING_OUTCOMES

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the REST API and ``--json`` output."""
        request = self.request
        return {
            "outcome": self.outcome,
            "ok": self.ok,
            "summary": self.summary,
            "flow": self.flow,
            "route": self.route,
            "target": self.target,
            "keys": dict(self.keys),
            "request": None
            if request is None
            else {
                "method": request.method,
                "url": request.url,
                "content_type": request.content_type,
                "headers": dict(request.headers),
                "body": request.body,
            },
            "problems": [{"field": p.field, "message": p.message} for p in self.problems],
            "checks": list(self.checks),
        }


@runtime_checkable
class DryRunFlow(Protocol):
    """A flow that can tell what it would do with a payload without changing anything."""

    async def dry_run(self, payload: bytes) -> DryRunReport:
        """Parse, route, map and run read-only checks against the target; never write."""
        ...


@dataclass(frozen=True)
class DryRun:
    """A dry run of one stored message: which payload was tried, and the report."""

    message_id: str
    tested: str
    report: DryRunReport

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the REST API."""
        return {"message_id": self.message_id, "tested": self.tested, **self.report.to_dict()}
