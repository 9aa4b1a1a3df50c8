"""``d365sap load customers``: the initial load of Dynamics accounts into SAP.

Pages through the accounts with ERP data in Dataverse (all of them, or those matching
``--filter``), submits one message per account to the native customer flow that the running
service processes (:mod:`d365sap.flows.dataverse_load`), checkpoints every page, then waits
for the messages to settle and prints what happened per target system. ``--dry-run`` lets the
flow map and validate only. A load that was interrupted is resumed by the next invocation with
the same filter (``--restart`` starts a new run instead).

Exit codes: 0 every message settled without failure; 1 some failed (or would fail), some are
still open when the wait ran out, or another load of the same filter is running; 2 a usage or
configuration error.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from d365sap.cli_filters import ConfigOption
from d365sap.config import Settings
from d365sap.engine.checkpoints import CheckpointConflictError, CheckpointStore
from d365sap.engine.source_runs import run_counts, run_messages
from d365sap.engine.store import MessageStore
from d365sap.engine.views import OPEN_STATUSES
from d365sap.errors import ConfigError, D365SapError
from d365sap.flows.dataverse_load import CustomerLoad, LoadRun, PageDone
from d365sap.flows.dataverse_messages import FLOW_NAME
from d365sap.flows.load_summary import (
    CREATED,
    FAILED_CATEGORY,
    PENDING,
    SKIPPED,
    UPDATED,
    LoadSummary,
    summarize,
)

load_app = typer.Typer(no_args_is_help=True, help="Initial loads from Dynamics 365 into SAP.")

console = Console()
err_console = Console(stderr=True)
FAILURES_SHOWN = 20
SETTLE_POLL_SECONDS = 0.5


class LoadStoppedError(Exception):
    """The load stopped: a message for the operator and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@load_app.command("customers")
def load_customers(
    config: ConfigOption = None,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="OData $filter on accounts, e.g. \"address1_country eq 'DE'\" "
            "(accounts without ERP data are never loaded)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="map and validate only; nothing is written")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--restart",
            help="continue an interrupted load with the same filter, or start a new run",
        ),
    ] = True,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait for the messages to settle")
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=0, help="longest wait for the messages to settle, in seconds")
    ] = 3600.0,
    page_size: Annotated[
        int | None,
        typer.Option(min=1, max=5000, help="accounts per page (default: \\[dataverse] page_size)"),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="also write the summary as JSON to this file")
    ] = None,
) -> None:
    """Load customers from Dataverse into SAP through the running service's flow."""
    from d365sap.cli import settings_or_exit

    settings = settings_or_exit(config, check_secrets=True)
    try:
        code = asyncio.run(
            _load(
                settings,
                filter_text=filter_text,
                dry_run=dry_run,
                restart=not resume,
                wait=wait,
                timeout=timeout,
                page_size=page_size,
                report=report,
            )
        )
    except LoadStoppedError as failure:
        err_console.print(f"[red]{escape(str(failure))}[/]")
        raise typer.Exit(failure.code) from failure
    raise typer.Exit(code)


async def _load(
    settings: Settings,
    *,
    filter_text: str | None,
    dry_run: bool,
    restart: bool,
    wait: bool,
    timeout: float,
    page_size: int | None,
    report: Path | None,
) -> int:
    # Imported here: the service pulls in every flow and client, which `--help` does not need.
    from d365sap.service import Service

    try:
        store = MessageStore.open(settings.store.url)
    except SQLAlchemyError as exc:
        message = f"cannot open the message store {settings.store.url}: {exc}"
        raise LoadStoppedError(message, 2) from exc
    try:
        try:
            service = Service(settings, store=store, serve_jobs=False)
        except ConfigError as exc:
            problems = "; ".join(f"{where}: {why}" for where, why in exc.problems)
            raise LoadStoppedError(problems, 2) from exc
        try:
            if service.dataverse is None or FLOW_NAME not in service.flows:
                raise LoadStoppedError(
                    f"the flow {FLOW_NAME!r} is not enabled in this configuration "
                    "([dataverse_flow] enabled, and a [dataverse] credential)",
                    2,
                )
            # The flow's own client: one token, one pool, the deployment's shared throttle.
            client = service.dataverse.client
            load = CustomerLoad(
                client,
                service.intake,
                CheckpointStore(store),
                user_filter=filter_text,
                dry_run=dry_run,
                page_size=page_size or settings.dataverse.page_size,
            )
            started = time.monotonic()
            run = await _submit_all(load, restart=restart)
            summary, open_left = await _settle(store, run, wait=wait, timeout=timeout)
            elapsed = time.monotonic() - started
            throttle_stats = getattr(client.throttle, "stats", None)
            throttle = asdict(throttle_stats) if throttle_stats is not None else {}
            stats: dict[str, Any] = {
                "run_id": run.run_id,
                "dry_run": dry_run,
                "resumed": run.resumed,
                "seconds": round(elapsed, 3),
                "dataverse_requests": client.stats.requests,
                "dataverse_throttled": client.stats.throttled,
                "dataverse_token_refreshes": client.stats.token_refreshes,
                "throttle": throttle,
            }
        finally:
            await service.stop()
    finally:
        await store.aclose()
    _print_summary(summary, dry_run=dry_run, waited=wait)
    waited = float(throttle.get("waited_seconds", 0.0))
    console.print(
        f"run {run.run_id}: {summary.messages} messages in {elapsed:.1f} s; Dataverse "
        f"requests {client.stats.requests} (429: {client.stats.throttled}), throttle waits "
        f"{waited:.1f} s"
    )
    if report is not None:
        document = {**stats, "open": open_left, "summary": summary.to_dict()}
        report.write_text(json.dumps(document, indent=2), encoding="utf-8")
    if summary.total(FAILED_CATEGORY) or open_left:
        return 1
    return 0


async def _submit_all(load: CustomerLoad, *, restart: bool) -> LoadRun:
    try:
        run = await load.prepare(restart=restart)
    except CheckpointConflictError as exc:
        raise LoadStoppedError(f"another load with this filter is running: {exc}", 1) from exc
    if run.resumed:
        console.print(
            f"Resuming load {run.run_id}: {run.accounts_before} accounts read before "
            f"({run.submitted_before} messages submitted)."
        )
    else:
        console.print(f"Load {run.run_id}{' (dry run)' if load.dry_run else ''}.")
    try:
        total = await load.count()
    except D365SapError:
        total = None
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(
            "accounts read", total=total, completed=run.accounts_before, note=""
        )
        counts = {"submitted": run.submitted_before, "duplicates": 0, "without": 0}

        async def on_page(page: PageDone) -> None:
            counts["submitted"] += page.submitted
            counts["duplicates"] += page.duplicates
            counts["without"] += page.without_erp_data
            progress.advance(task, page.accounts)
            done = progress.tasks[task].completed
            if total is not None and done > total:  # Dataverse counts to 5000 at most
                progress.update(task, total=done)
            note = f"{counts['submitted']} new"
            if counts["duplicates"]:
                note += f", {counts['duplicates']} already submitted"
            if counts["without"]:
                note += f", {counts['without']} without ERP data"
            progress.update(task, note=note)

        try:
            await load.run(run, on_page)
        except CheckpointConflictError as exc:
            raise LoadStoppedError(f"another load with this filter is running: {exc}", 1) from exc
        except D365SapError as exc:
            raise LoadStoppedError(f"the load stopped (run it again to resume): {exc}", 1) from exc
        progress.update(task, total=progress.tasks[task].completed)
    return run


async def _settle(
    store: MessageStore, run: LoadRun, *, wait: bool, timeout: float
) -> tuple[LoadSummary, int]:
    """Wait (with a progress bar) until the run's messages are settled; then summarize them."""

    def counts() -> dict[str, int]:
        return run_counts(store, FLOW_NAME, run.prefix)

    open_left = 0
    if wait:
        deadline = time.monotonic() + timeout
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("messages settled", total=None, note="")
            while True:
                current = await store.call(counts)
                total = sum(current.values())
                open_left = sum(n for status, n in current.items() if status in OPEN_STATUSES)
                failed = current.get("failed", 0)
                progress.update(
                    task,
                    total=total,
                    completed=total - open_left,
                    note=f"{failed} failed" if failed else "",
                )
                if open_left == 0 or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(SETTLE_POLL_SECONDS)
    messages = await store.call(lambda: run_messages(store, FLOW_NAME, run.prefix))
    summary = summarize(messages)
    if not wait:
        open_left = summary.total(PENDING)
    return summary, open_left


def _print_summary(summary: LoadSummary, *, dry_run: bool, waited: bool) -> None:
    labels = {
        CREATED: "would create" if dry_run else "created",
        UPDATED: "would update" if dry_run else "updated",
        FAILED_CATEGORY: "would fail" if dry_run else "failed",
        SKIPPED: "skipped",
        PENDING: "still open",
    }
    shown = [c for c in labels if c != PENDING or summary.total(PENDING)]
    table = Table(
        title=f"Load {'dry run ' if dry_run else ''}summary ({summary.messages} accounts)"
    )
    table.add_column("target")
    for category in shown:
        table.add_column(labels[category], justify="right")
    for target, counter in sorted(summary.counts.items()):
        table.add_row(target, *(str(counter[c]) for c in shown))
    if len(summary.counts) > 1:
        table.add_row("[bold]all[/]", *(f"[bold]{summary.total(c)}[/]" for c in shown))
    console.print(table)
    if summary.failures:
        failures = Table(title="Failures", show_lines=False)
        failures.add_column("account")
        failures.add_column("target")
        failures.add_column("reason", overflow="fold")
        for entry in summary.failures[:FAILURES_SHOWN]:
            failures.add_row(entry.source_id.rsplit(":", 1)[-1], entry.target, entry.reason or "")
        console.print(failures)
        hidden = len(summary.failures) - FAILURES_SHOWN
        if hidden > 0:
            console.print(
                f"… and {hidden} more: d365sap messages list --flow {FLOW_NAME} --status failed"
            )
    if not waited and summary.total(PENDING):
        console.print("Messages still open: follow them with d365sap messages list.")
