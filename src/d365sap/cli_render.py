"""Rich renderings for ``d365sap messages``: tables of messages, one message, action summaries
and dry-run reports.

Kept apart from the commands so that what an operator sees can change without touching how the
commands select and act, and so that both stay short enough to read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from d365sap.engine.dry_run import DryRun
from d365sap.engine.operations import ActionResult
from d365sap.engine.views import MessageView

STATUS_STYLES = {
    "received": "cyan",
    "queued": "cyan",
    "processing": "blue",
    "retrying": "yellow",
    "done": "green",
    "discarded": "magenta",
    "failed": "bold red",
    "superseded": "dim",
}
STATUS_ORDER = tuple(STATUS_STYLES)


def status_text(status: str | None) -> Text:
    """A status in its colour (failed red, retrying yellow, done green, ...)."""
    value = status or ""
    return Text(value, style=STATUS_STYLES.get(value, ""))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def counts_line(counts: Mapping[str, int]) -> Text:
    """``42 messages in the store: 3 failed · 1 retrying · 38 done``, coloured by status."""
    total = sum(counts.values())
    line = Text(f"{total} message{'s' if total != 1 else ''} in the store")
    ordered = [s for s in STATUS_ORDER if counts.get(s)] + sorted(
        s for s in counts if s not in STATUS_STYLES and counts[s]
    )
    for index, status in enumerate(ordered):
        line.append(": " if index == 0 else " · ")
        line.append(f"{counts[status]} {status}", style=STATUS_STYLES.get(status, ""))
    return line


def messages_table(rows: Sequence[MessageView], *, title: str) -> Table:
    """The list view: one line per message, newest first as given."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    for column in ("flow", "status", "outcome", "route", "key", "v", "tries"):
        table.add_column(column, overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("error", overflow="fold", max_width=60)
    for m in rows:
        table.add_row(
            m.id,
            m.flow,
            status_text(m.status),
            m.outcome or "",
            m.route or "",
            m.business_key or "",
            str(m.version),
            str(m.attempts),
            _when(m.created_at),
            m.error or "",
        )
    return table


def message_overview(message: MessageView) -> Table:
    """The header of ``messages show``: where the message stands."""
    table = Table(show_header=False, title=f"Message {message.id}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("status", status_text(message.status)),
        ("outcome", message.outcome or ""),
        ("flow / route", f"{message.flow} / {message.route or '-'}"),
        ("business key", message.business_key or ""),
        ("HTTP status", str(message.http_status or "")),
        ("attempts", str(message.attempts)),
        ("payload version", f"{message.version} of {len(message.versions) or 1}"),
        ("correlation id", message.correlation_id),
        ("source id", message.source_id or ""),
        ("received", _when(message.created_at)),
        ("finished", _when(message.finished_at)),
        ("next attempt", _when(message.next_attempt_at)),
        ("error", Text(message.error or "", style="red")),
    ]
    for name, value in rows:
        if value:
            table.add_row(name, value)
    return table


def steps_table(message: MessageView) -> Table:
    """Every attempt's steps, one section per attempt."""
    table = Table(title="Attempts and steps", title_justify="left")
    for column in ("attempt", "step", "status", "ms", "backend", "detail"):
        table.add_column(column, overflow="fold")
    current: int | None = None
    for step in message.steps:
        if current is not None and step.attempt != current:
            table.add_section()
        current = step.attempt
        detail = step.detail or ""
        if step.status != "ok" and step.backend_reply:
            detail = f"{detail}\n{step.backend_reply[:300]}".strip()
        table.add_row(
            str(step.attempt),
            step.name,
            Text(step.status, style="green" if step.status == "ok" else "red"),
            f"{step.duration_ms:.1f}",
            str(step.backend_status or ""),
            detail,
        )
    return table


def versions_table(message: MessageView) -> Table:
    """The payload versions, the current one marked."""
    table = Table(title="Payload versions", title_justify="left")
    for column in ("version", "created", "bytes", "comment"):
        table.add_column(column, overflow="fold")
    for version in message.versions:
        marker = " (current)" if version.version == message.version else ""
        table.add_row(
            f"{version.version}{marker}",
            _when(version.created_at),
            str(len(version.payload)),
            version.comment or "",
        )
    return table


def action_summary(results: Sequence[ActionResult], *, verb: str) -> Table:
    """One line per message acted on: before → after, or why it was refused."""
    table = Table(title=f"{verb.capitalize()}: summary", title_justify="left")
    table.add_column("message", no_wrap=True)
    for column in ("before", "after", "result", "detail"):
        table.add_column(column, overflow="fold")
    for result in results:
        outcome = (
            Text(verb, style="green")
            if result.applied
            else Text(f"refused ({result.refusal})", style="red")
        )
        table.add_row(
            result.message_id,
            status_text(result.before),
            status_text(result.after) if result.applied else Text(""),
            outcome,
            result.detail,
        )
    return table


def totals_line(results: Iterable[ActionResult], *, verb: str) -> str:
    """``3 retried, 1 refused``."""
    tally = Counter("applied" if r.applied else "refused" for r in results)
    return f"{tally['applied']} {verb}, {tally['refused']} refused"


def _body(body: str, content_type: str) -> Syntax:
    lexer = "json" if "json" in content_type else "xml" if "xml" in content_type else "text"
    return Syntax(body, lexer, word_wrap=True, theme="ansi_dark")


def dry_run_panel(dry_run: DryRun) -> Panel:
    """A dry-run report: verdict, keys, read-only checks, problems, the request it would send."""
    report = dry_run.report
    style = "green" if report.ok else "red"
    parts: list[Any] = [Text(report.summary, style=f"bold {style}")]
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("tested", dry_run.tested)
    facts.add_row("route", f"{report.route or '-'} → {report.target or '-'}")
    if report.keys:
        facts.add_row("keys", ", ".join(f"{k}={v}" for k, v in report.keys.items()))
    for check in report.checks:
        facts.add_row("checked", check)
    parts.append(facts)
    if report.problems:
        problems = Table(title="Problems", title_justify="left", title_style="red")
        problems.add_column("field", style="bold", overflow="fold")
        problems.add_column("problem", overflow="fold")
        for problem in report.problems:
            problems.add_row(problem.field or "-", problem.message)
        parts.append(problems)
    if report.request is not None:
        request = report.request
        headers = "".join(f"\n{k}: {v}" for k, v in request.headers.items())
        parts.append(Text(f"{request.method} {request.url}{headers}", style="bold"))
        parts.append(_body(request.body, request.content_type))
    title = f"dry run of {dry_run.message_id}: {report.outcome}"
    return Panel(Group(*parts), title=title, title_align="left", border_style=style)
