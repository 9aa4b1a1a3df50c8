"""Reading the messages of one run of a trigger: every message whose source id has a prefix.

A bulk trigger (``d365sap load customers``) submits thousands of messages with source ids
``<prefix><record>``; it follows them by that prefix: how many are still open, and, once they
are settled, what became of each. Only the columns needed for that are read (no payloads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from d365sap.engine.store import MessageStore
from d365sap.engine.tables import MessageRow


@dataclass(frozen=True)
class RunMessage:
    """One message of a run as it stands."""

    id: str
    source_id: str
    status: str
    outcome: str | None
    route: str | None
    error: str | None
    result: dict[str, Any] | None


def _of_run(flow: str, prefix: str) -> Any:
    return (MessageRow.flow == flow) & MessageRow.source_id.startswith(prefix, autoescape=True)


def run_counts(store: MessageStore, flow: str, prefix: str) -> dict[str, int]:
    """How many messages of the run are in each status."""
    query = (
        select(MessageRow.status, func.count())
        .where(_of_run(flow, prefix))
        .group_by(MessageRow.status)
    )
    with store.sessions() as session:
        rows = session.execute(query).all()
    return {str(status): int(count) for status, count in rows}


def run_messages(store: MessageStore, flow: str, prefix: str) -> list[RunMessage]:
    """Every message of the run, in arrival order."""
    query = (
        select(
            MessageRow.id,
            MessageRow.source_id,
            MessageRow.status,
            MessageRow.outcome,
            MessageRow.route,
            MessageRow.error,
            MessageRow.result,
        )
        .where(_of_run(flow, prefix))
        .order_by(MessageRow.seq)
    )
    with store.sessions() as session:
        rows = session.execute(query).all()
    return [
        RunMessage(
            id=str(row.id),
            source_id=str(row.source_id),
            status=str(row.status),
            outcome=row.outcome,
            route=row.route,
            error=row.error,
            result=row.result if isinstance(row.result, dict) else None,
        )
        for row in rows
    ]
