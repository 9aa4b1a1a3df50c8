"""A worker process's main loop: serve procrastinate jobs until SIGTERM or SIGINT.

Process managers (systemd, Kubernetes, supervisord) stop workers with SIGTERM; an operator presses
Ctrl-C. Either way the worker stops fetching, lets running jobs finish within the grace period and
puts the rest back in the queue, so stopping a worker never loses or half-finishes a message.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence

import structlog

from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime

log = structlog.get_logger("d365sap.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_worker_process(
    runtime: ProcrastinateRuntime,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
) -> None:
    """Serve ``queues`` (default: all) until a stop signal arrives."""
    loop = asyncio.get_running_loop()

    def stop(signum: signal.Signals) -> None:
        log.info("stop requested", signal=signum.name, pid=os.getpid())
        runtime.request_stop()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        await runtime.serve(queues, concurrency)
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
