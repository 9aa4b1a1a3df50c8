"""What a load's messages came to: created, updated, failed and skipped per target system.

``d365sap load customers`` ends with this summary. Each settled message is read from its stored
result: a message of the native flow covers one account, and its result lists one line per
record (``records``: each ERP account detail and ERP account, with its ``action`` and target);
a result without such lines counts as one line with its ``outcome``. Failures keep SAP's or the
mapping's reason, skips the discard reason. A dry run's lines are plans (``planned`` with a
reason saying what would happen, ``would_create``, ``invalid`` …) and count the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from d365sap.engine.source_runs import RunMessage
from d365sap.engine.views import DISCARDED, DONE, FAILED, SUPERSEDED

CREATED = "created"
UPDATED = "updated"
FAILED_CATEGORY = "failed"
SKIPPED = "skipped"
PENDING = "pending"
CATEGORIES = (CREATED, UPDATED, FAILED_CATEGORY, SKIPPED, PENDING)

_FAILING_PLANS = frozenset({"invalid", "would_fail", "check_failed", "unsupported", "error"})
_SKIPPING = frozenset({"discarded", "skipped", "ignored", "unchanged", "superseded"})
_NESTED = ("records", "results", "targets")
_PLANNED = "planned"


@dataclass(frozen=True)
class Entry:
    """One target's part of one message."""

    source_id: str
    message_id: str
    target: str
    category: str
    reason: str | None = None


@dataclass
class LoadSummary:
    """Counts per target and category, and the reasons of the failures."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[Entry] = field(default_factory=list)
    messages: int = 0

    def add(self, entry: Entry) -> None:
        self.counts.setdefault(entry.target, Counter())[entry.category] += 1
        if entry.category == FAILED_CATEGORY:
            self.failures.append(entry)

    def total(self, category: str) -> int:
        return sum(counter[category] for counter in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--report``)."""
        return {
            "messages": self.messages,
            "targets": {
                target: {category: counter[category] for category in CATEGORIES}
                for target, counter in sorted(self.counts.items())
            },
            "totals": {category: self.total(category) for category in CATEGORIES},
            "failures": [
                {
                    "account": e.source_id.rsplit(":", 1)[-1],
                    "message_id": e.message_id,
                    "target": e.target,
                    "reason": e.reason,
                }
                for e in self.failures
            ],
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason(part: Mapping[str, Any]) -> str | None:
    error = part.get("error")
    if isinstance(error, Mapping):
        message = _text(error.get("message"))
        where = _text(error.get("field"))
        if message:
            return f"{where}: {message}" if where and where not in message else message
    problems = part.get("problems")
    if isinstance(problems, list) and problems:
        texts = [
            f"{p.get('field')}: {p.get('message')}" if p.get("field") else str(p.get("message"))
            for p in problems
            if isinstance(p, Mapping)
        ]
        if texts:
            return "; ".join(texts)
    return (
        _text(part.get("backend_message"))
        or _text(part.get("reason"))
        or _text(part.get("summary"))
    )


def category_of(outcome: str | None, ok: object = None, reason: str | None = None) -> str:
    """The summary's category for a flow outcome (or a dry run's plan and its reason)."""
    value = (outcome or "").lower()
    if value == _PLANNED:
        value = "would_create" if "create" in (reason or "").lower() else "would_update"
    if ok is False or value in _FAILING_PLANS:
        return FAILED_CATEGORY
    if value in _SKIPPING or value.startswith("would_skip") or value.startswith("would_discard"):
        return SKIPPED
    if "create" in value:
        return CREATED
    if "update" in value or "idoc" in value or "delet" in value or value == "flagged":
        return UPDATED
    return SKIPPED if not value else UPDATED


def _parts(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for name in _NESTED:
        nested = result.get(name)
        if isinstance(nested, list) and nested and all(isinstance(p, Mapping) for p in nested):
            return list(nested)
    return [result]


def _outcome(part: Mapping[str, Any]) -> str | None:
    return _text(part.get("action")) or _text(part.get("outcome"))


def _category(part: Mapping[str, Any], fallback: str | None = None) -> str:
    return category_of(_outcome(part) or fallback, part.get("ok"), _text(part.get("reason")))


def _target(part: Mapping[str, Any], message: RunMessage) -> str:
    return _text(part.get("target")) or _text(part.get("route")) or message.route or "-"


def entries(message: RunMessage) -> list[Entry]:
    """The entries of one message of the run."""
    result = message.result or {}

    def entry(part: Mapping[str, Any], category: str, reason: str | None = None) -> Entry:
        return Entry(message.source_id, message.id, _target(part, message), category, reason)

    if message.status == FAILED:
        parts = _parts(result)
        marked = [(p, _category(p)) for p in parts]
        if not any(category == FAILED_CATEGORY for _, category in marked):
            return [entry(result, FAILED_CATEGORY, _reason(result) or message.error or "failed")]
        return [
            entry(
                part,
                category,
                (_reason(part) or message.error) if category == FAILED_CATEGORY else None,
            )
            for part, category in marked
        ]
    if message.status == SUPERSEDED:
        return [entry(result, SKIPPED, "superseded by a newer message")]
    if message.status == DISCARDED:
        return [entry(result, SKIPPED, _reason(result) or message.error)]
    if message.status != DONE:
        return [entry(result, PENDING, message.status)]
    found: list[Entry] = []
    for part in _parts(result):
        category = _category(part, message.outcome)
        reason = _reason(part) if category in (FAILED_CATEGORY, SKIPPED) else None
        found.append(entry(part, category, reason))
    return found


def summarize(messages: Iterable[RunMessage]) -> LoadSummary:
    """Count every message of a run."""
    summary = LoadSummary()
    for message in messages:
        summary.messages += 1
        for item in entries(message):
            summary.add(item)
    return summary
