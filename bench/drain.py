"""Queue first, then process: what procrastinate worker processes cost per message on their own.

Run: ``.venv/bin/python bench/drain.py [--messages 3000] [--workers 1 --workers 4] [--pin]``

In ``engine.py`` the intake and the processing overlap, so how many jobs a claim finds, how
often workers wake for nothing and how the cores are shared all depend on how fast messages
arrive. Here the worker processes start, go idle, and are stopped (SIGSTOP) while the service
takes every message; then they are let go on the full queue. Every worker count does the same
work then: the same claims of a full queue, the same flows. What differs is how many processes
share the machine's cores. Printed per run: the idle CPU of a waiting worker process, the
workers' CPU per message and throughput while draining, and their context switches per message
(involuntary ones: taken off a core by the scheduler). ``--pin`` keeps every worker process on
the first core, which tells apart the cost of the work from the cost of processes wandering
between cores. The baseline of ``engine.py`` is measured before and after, for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import engine  # the sibling benchmark (this script's folder is on the path): its processes


@dataclass(frozen=True)
class Drain:
    """One drain of a full queue by ``workers`` processes."""

    workers: int
    pinned: bool
    idle_ms_per_s: float
    cpu_ms: float
    rate: float
    involuntary: float
    voluntary: float


def switches(pid: int) -> tuple[int, int]:
    """The process's voluntary and involuntary context switches so far."""
    return (
        engine.status_number(pid, "voluntary_ctxt_switches"),
        engine.status_number(pid, "nonvoluntary_ctxt_switches"),
    )


def drain(
    workers: int,
    bodies: list[bytes],
    ports: tuple[int, int],
    folder: Path,
    progress: Progress,
    *,
    pin: bool,
) -> Drain:
    with engine.postgres_database() as store, contextlib.ExitStack() as stack:
        running = engine.start_engine(
            stack, store=store, kind="procrastinate", workers=workers, ports=ports, folder=folder
        )
        pids = running.worker_pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            if pin:
                os.sched_setaffinity(pid, {0})
        asyncio.run(engine.post_all(running.port, bodies, 32, progress))
        before = sum(engine.cpu_seconds(pid) for pid in pids)
        counted = [switches(pid) for pid in pids]
        started = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        engine.wait_settled(running.url, len(bodies), progress, running.children, running.pids)
        elapsed = time.monotonic() - started
        cpu = sum(engine.cpu_seconds(pid) for pid in pids) - before
        after = [switches(pid) for pid in pids]
    count = len(bodies)
    assert running.idle_cpu is not None  # there are workers
    return Drain(
        workers,
        pin,
        running.idle_cpu,
        1000 * cpu / count,
        count / elapsed,
        sum(b[1] - a[1] for a, b in zip(counted, after, strict=True)) / count,
        sum(b[0] - a[0] for a, b in zip(counted, after, strict=True)) / count,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, action="append", help="default 1 and 4")
    parser.add_argument("--pin", action="store_true", help="worker processes on core 0 only")
    args = parser.parse_args()
    console = Console(width=max(120, Console().width))
    bodies = engine.messages(args.messages)
    runs: list[Drain] = []
    baselines: list[engine.Result] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Progress(console=console, transient=True) as progress,
    ):
        folder = Path(tmp)
        with engine.running_emulators(folder) as (emulators, ports):
            emulators.set_latency(0)
            sample = bodies[:300]
            baselines.append(engine.run_baseline(emulators, sample, 0))
            for workers in args.workers or [1, 4]:
                emulators.reset()
                runs.append(drain(workers, bodies, ports, folder, progress, pin=args.pin))
            emulators.reset()
            baselines.append(engine.run_baseline(emulators, sample, 0))
    table = Table(title=f"draining {args.messages} queued messages (0 ms back-end latency)")
    for column in ("workers", "idle ms CPU/s each", "CPU ms/msg", "msg/s", "switches/msg"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            f"{run.workers}{' (pinned)' if run.pinned else ''}",
            f"{run.idle_ms_per_s:.1f}",
            f"{run.cpu_ms:.2f}",
            f"{run.rate:.0f}",
            f"{run.involuntary:.1f} involuntary, {run.voluntary:.1f} voluntary",
        )
    console.print(table)
    console.print(
        "baseline (sequential, no store) before and after: "
        + ", ".join(f"{b.cpu_ms:.2f}" for b in baselines)
        + " ms CPU/msg"
    )


if __name__ == "__main__":
    main()
