"""``d365sap messages``: look at stored messages and act on dead letters.

Failed messages stay in the store with every attempt, error and payload version; these commands
let an operator look (``list``, ``show``), send them again (``retry``), correct them
(``resubmit``) or give up on them (``discard``), one by one or every message matching a filter.
The work is done by :mod:`d365sap.engine.operations`; this module parses options, shows progress
and results, and maps them to exit codes: 0 everything done, 1 something refused or not found
(or a dry run that would not go through), 2 a usage or configuration error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import SQLAlchemyError

from d365sap.cli_filters import (
    ActLimitOption,
    AllOption,
    ConfigOption,
    FlowOption,
    IdsArgument,
    KeyOption,
    SinceOption,
    StatusOption,
    UntilOption,
    parse_when,
    statuses_of,
    target_selection,
)
from d365sap.cli_render import (
    action_summary,
    counts_line,
    dry_run_panel,
    message_overview,
    messages_table,
    steps_table,
    totals_line,
    versions_table,
)
from d365sap.config import Settings
from d365sap.engine.dry_run import DryRun
from d365sap.engine.operations import (
    DEFAULT_SELECTION,
    ActionResult,
    MessageOperations,
    Selection,
    UnknownMessageError,
    select_messages,
)
from d365sap.engine.store import MessageStore

messages_app = typer.Typer(
    no_args_is_help=True, help="Look at stored messages; retry, correct or discard dead letters."
)

PROGRESS_FROM = 5
"""Show a progress bar when acting on at least this many messages."""
T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def _settings(config: Path | None) -> Settings:
    # cli.py registers this module, so it is imported here, when a command runs
    from d365sap.cli import settings_or_exit

    return settings_or_exit(config)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(message, style="red", markup=False, highlight=False)
    return typer.Exit(code)


def _open_store(settings: Settings) -> MessageStore:
    try:
        return MessageStore.open(settings.store.url)
    except SQLAlchemyError as exc:
        raise _fail(f"cannot open the message store {settings.store.url}: {exc}", 2) from exc


def _with_operations(config: Path | None, work: Callable[[MessageOperations], Awaitable[T]]) -> T:
    """Build the service's parts (store, runtime's enqueuer, flows), run ``work``, close them.

    No workers start here: a queued message is picked up by the running service or workers.
    """
    settings = _settings(config)
    store = _open_store(settings)

    async def main() -> T:
        from d365sap.service import Service

        service = Service(settings, store=store, serve_jobs=False)
        try:
            return await work(MessageOperations(service.store, service.runtime, service.flows))
        finally:
            await service.stop()
            await store.aclose()  # this loop's connections, before the loop ends

    try:
        return asyncio.run(main())
    finally:
        store.close()


def _selected_ids(
    ops: MessageOperations, ids: list[str] | None, every: bool, selection: Selection
) -> list[str]:
    if every:
        statuses = selection.statuses or DEFAULT_SELECTION
        chosen = ops.select(dataclasses.replace(selection, statuses=statuses))
        if not chosen:
            err_console.print("no message matches the filters")
        return [m.id for m in chosen]
    return list(ids or [])


def _run_each(
    ids: Sequence[str], verb: str, act: Callable[[str], ActionResult]
) -> list[ActionResult]:
    """Act on every id, with a progress bar when there are many."""
    results: list[ActionResult] = []
    columns = (TextColumn(f"{verb}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=err_console, transient=True, disable=len(ids) < PROGRESS_FROM
    ) as progress:
        task = progress.add_task(verb, total=len(ids))
        for message_id in ids:
            results.append(act(message_id))
            progress.advance(task)
    return results


def _report(results: Sequence[ActionResult], verb: str) -> None:
    if not results:
        raise typer.Exit(0)
    console.print(action_summary(results, verb=verb))
    console.print(totals_line(results, verb=verb))
    if not all(r.applied for r in results):
        raise typer.Exit(1)


async def _dry_runs(ops: MessageOperations, ids: Sequence[str], payload: bytes | None) -> bool:
    """Dry-run each message, print the reports; whether every one would go through."""
    ok = True
    for message_id in ids:
        try:
            result: DryRun = await ops.dry_run(message_id, payload)
        except UnknownMessageError:
            err_console.print(f"no message {message_id}", style="red", markup=False)
            ok = False
            continue
        console.print(dry_run_panel(result))
        ok = ok and result.report.ok
    console.print("dry run: nothing was written", style="dim")
    return ok


@messages_app.command("list")
def messages_list(
    config: ConfigOption = None,
    flow: FlowOption = None,
    status: StatusOption = None,
    key: KeyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """Stored messages, newest first, with a count of every status."""
    selection = Selection(
        flow=flow,
        statuses=statuses_of(status),
        business_key=key,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        limit=limit,
        newest_first=True,
    )
    settings = _settings(config)
    store = _open_store(settings)
    try:
        rows = select_messages(store, selection)
        counts = store.counts()
    finally:
        store.close()
    console.print(messages_table(rows, title=f"Messages ({len(rows)} shown, newest first)"))
    console.print(counts_line(counts))


@messages_app.command("show")
def messages_show(
    message_id: str,
    config: ConfigOption = None,
    payload: Annotated[
        int | None,
        typer.Option("--payload", min=1, help="print only this payload version, as stored"),
    ] = None,
) -> None:
    """One message: where it stands, its result, every attempt's steps and payload versions."""
    store = _open_store(_settings(config))
    try:
        message = store.get(message_id)
    finally:
        store.close()
    if message is None:
        raise _fail(f"no message {message_id}", 1)
    if payload is not None:
        version = next((v for v in message.versions if v.version == payload), None)
        if version is None:
            raise _fail(f"message {message_id} has no payload version {payload}", 1)
        sys.stdout.buffer.write(version.payload)
        sys.stdout.flush()
        return
    console.print(message_overview(message))
    if message.result is not None:
        console.print_json(json.dumps(message.result))
    console.print(steps_table(message))
    console.print(versions_table(message))


@messages_app.command("retry")
def messages_retry(
    message_ids: IdsArgument = None,
    config: ConfigOption = None,
    all_matching: AllOption = False,
    flow: FlowOption = None,
    status: StatusOption = None,
    key: KeyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: ActLimitOption = None,
    force: Annotated[bool, typer.Option(help="also done or discarded messages")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="map and check against the target, write nothing")
    ] = False,
) -> None:
    """Queue messages again with their current payload (failed, retrying, superseded)."""
    selection = target_selection(
        "retry",
        message_ids,
        all_matching,
        flow=flow,
        status=status,
        key=key,
        since=since,
        until=until,
        limit=limit,
    )

    async def work(ops: MessageOperations) -> tuple[bool, list[ActionResult]]:
        ids = _selected_ids(ops, message_ids, all_matching, selection)
        if dry_run:
            return await _dry_runs(ops, ids, None), []
        return True, _run_each(ids, "retried", lambda mid: ops.retry_one(mid, force=force))

    ok, results = _with_operations(config, work)
    if dry_run:
        raise typer.Exit(0 if ok else 1)
    _report(results, "retried")


def _read_payload(file: Path | None, current: Callable[[], bytes]) -> bytes:
    """The corrected payload: from ``file``, or the current one as edited in ``$EDITOR``."""
    if file is not None:
        try:
            return file.read_bytes()
        except OSError as exc:
            raise _fail(f"cannot read {file}: {exc.strerror or exc}", 2) from exc
    original = current()
    handle, name = tempfile.mkstemp(prefix="d365sap-", suffix=".xml")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(original)
        click.edit(filename=name)
        edited = Path(name).read_bytes()
    finally:
        Path(name).unlink(missing_ok=True)
    if edited == original:
        raise _fail("the payload was not changed; nothing resubmitted", 1)
    return edited


@messages_app.command("resubmit")
def messages_resubmit(
    message_id: str,
    config: ConfigOption = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="the corrected payload")] = None,
    edit: Annotated[
        bool, typer.Option("--edit", help="edit the current payload in $EDITOR")
    ] = False,
    comment: Annotated[
        str | None, typer.Option("--comment", "-m", help="why it was changed (kept with it)")
    ] = None,
    force: Annotated[bool, typer.Option(help="also done or discarded messages")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="map and check the payload, write nothing")
    ] = False,
) -> None:
    """Queue a message with a corrected payload, kept as a new version beside the original."""
    if (file is None) == (not edit):
        raise typer.BadParameter("give exactly one of --file and --edit")

    async def work(ops: MessageOperations) -> tuple[bool, list[ActionResult]]:
        def current() -> bytes:
            message = ops.store.status_of(message_id)
            if message is None:
                raise _fail(f"no message {message_id}", 1)
            return message.payload

        payload = _read_payload(file, current)
        if dry_run:
            return await _dry_runs(ops, [message_id], payload), []
        return True, [ops.resubmit(message_id, payload, comment=comment, force=force)]

    ok, results = _with_operations(config, work)
    if dry_run:
        raise typer.Exit(0 if ok else 1)
    _report(results, "resubmitted")


@messages_app.command("discard")
def messages_discard(
    message_ids: IdsArgument = None,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="why (kept with the message)", show_default=False)
    ] = "",
    config: ConfigOption = None,
    all_matching: AllOption = False,
    flow: FlowOption = None,
    status: StatusOption = None,
    key: KeyOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: ActLimitOption = None,
) -> None:
    """Give up on messages: settled as discarded with the reason, nothing more is sent."""
    selection = target_selection(
        "discard",
        message_ids,
        all_matching,
        flow=flow,
        status=status,
        key=key,
        since=since,
        until=until,
        limit=limit,
    )
    if not reason.strip():
        raise typer.BadParameter("a non-blank reason is required", param_hint="--reason")

    async def work(ops: MessageOperations) -> list[ActionResult]:
        ids = _selected_ids(ops, message_ids, all_matching, selection)
        return _run_each(ids, "discarded", lambda mid: ops.discard_one(mid, reason))

    _report(_with_operations(config, work), "discarded")
