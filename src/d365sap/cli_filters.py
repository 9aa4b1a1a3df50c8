"""Options shared by the ``d365sap messages`` commands and how they become a :class:`Selection`.

Times are given the way an operator thinks of them while looking at an incident: ``--since 2h``
or an ISO time; a time without a zone is UTC, as every time the store shows. A bulk action
names its messages either by id or with ``--all-matching`` and filters, never both, so a typo in
a filter can never widen an action that was meant for a few ids.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from d365sap.engine.operations import Selection
from d365sap.engine.views import FINAL_STATUSES, OPEN_STATUSES

STATUSES = frozenset(FINAL_STATUSES | OPEN_STATUSES)
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (default: $D365SAP_CONFIG)"),
]
FlowOption = Annotated[str | None, typer.Option("--flow", help="only this flow")]
StatusOption = Annotated[
    list[str] | None, typer.Option("--status", help="only this status (repeatable)")
]
KeyOption = Annotated[str | None, typer.Option("--key", help="only this business key")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="received at or after: ISO time (UTC) or 2h, 1d, 30m")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="received at or before: ISO time (UTC) or 2h, 1d")
]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="message ids", show_default=False)]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all-matching",
        help="act on every message matching the filters (default status: failed, retrying)",
    ),
]
ActLimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="act on at most this many (oldest first)")
]


def parse_when(text: str | None, option: str, *, now: datetime | None = None) -> datetime | None:
    """``2h``/``1d``/``30m``/``45s``/``1w`` ago, or an ISO time (UTC unless it names a zone)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO time nor a duration like 2h, 1d, 30m", param_hint=option
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def statuses_of(values: list[str] | None) -> tuple[str, ...]:
    """The ``--status`` values, each checked: a misspelt status would silently match nothing."""
    for value in values or ():
        if value not in STATUSES:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(sorted(STATUSES))}", param_hint="--status"
            )
    return tuple(dict.fromkeys(values or ()))


def target_selection(
    command: str,
    ids: list[str] | None,
    every: bool,
    *,
    flow: str | None,
    status: list[str] | None,
    key: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> Selection:
    """The filters of a bulk action; ids or ``--all-matching`` with filters, not both or none."""
    given = {"flow": flow, "status": status, "key": key, "since": since, "until": until}
    used = [f"--{name}" for name, value in {**given, "limit": limit}.items() if value]
    if ids and every:
        raise typer.BadParameter("give message ids or --all-matching, not both")
    if not ids and not every:
        raise typer.BadParameter(f"{command} needs message ids or --all-matching")
    if ids and used:
        raise typer.BadParameter(f"{', '.join(used)} only apply with --all-matching")
    return Selection(
        flow=flow,
        statuses=statuses_of(status),
        business_key=key,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        limit=limit,
    )
