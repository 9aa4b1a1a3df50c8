"""The delivery engine under load: d365sap against a naive direct script, same emulators.

Run: ``.venv/bin/python bench/engine.py [--messages 10000] [--latency 0 --latency 20]``

Everything runs as separate processes on loopback: the emulators (``d365sap emulators``, with
the back-end latency injected through ``/emulator/faults``), the service (``d365sap serve``) and,
for procrastinate, ``d365sap worker`` processes on a fresh PostgreSQL database. This script only
generates load and measures:

- **baseline**: a plain sequential loop with one httpx2 client and no store that sends the same
  mapped requests (S/4 GET + POST, or the IDoc) straight to the emulators. It runs on a sample
  (``--baseline-sample``; its rate does not depend on the count) before, between and after the
  engine runs of each latency; each engine run is compared with the mean of the two baselines
  measured just before and just after it (the table's baseline row is the mean of all).
- **engine runs**: N messages posted with ``Prefer: respond-async`` by concurrent senders; each
  is persisted, queued, processed and recorded. Throughput = N / (last finish - first arrival);
  latency per message = finish - arrival, from the store; CPU = CPU time of the service and
  worker processes from when the workers have started (their start-up is printed apart);
  memory = their peak RSS, and the RSS growth between a quarter and all of the load (flat
  means no growth with N). The load is written to keep-alive sockets, requests built before
  the clock starts, so the load generator takes little of the cores the engine runs on.

Targets printed at the end: with 20 ms latency the engine's throughput is at least 8x the
baseline's; with 0 ms latency its CPU per message is within 2x the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import create_engine, text

from d365sap.config import IdocControlSettings
from d365sap.connectors.idoc import soap_envelope
from d365sap.mapping.crm_xml import ErpAccountDetailsMessage, parse_customer_message
from d365sap.mapping.debmas import idoc_from_erp_account_details
from d365sap.mapping.s4_sales_area import S4MappingOptions, create_payload, sales_area_key

EXAMPLES = Path(__file__).resolve().parents[1] / "src/d365sap/resources/examples"
PG_ADMIN = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
EMU_PASSWORD = "Welcome1!"
SERVICE_USER, SERVICE_PASSWORD = "bench", "bench-pw"
S4_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
INBOUND_PATH = "/http/CustomerSalesData_CRM_to_S4HC_ERP"
CONCURRENCY = {"s4hc": 32, "erp": 16, "default": 8}
"""Slots per queue; a worker process serves each of these queues with a worker of its own."""
FINAL = ("done", "failed", "discarded", "superseded")
S4_CUSTOMERS = ("17100001", "17100002", "17100003", "17100004", "10100001")


def messages(count: int) -> list[bytes]:
    """``count`` messages for distinct records: half S/4 sales areas, half ERP sales areas."""
    s4 = (EXAMPLES / "in_erpaccountdetails_S4HC.xml").read_bytes()
    ecc = (EXAMPLES / "in_erpaccountdetails_ECC.xml").read_bytes()
    out: list[bytes] = []
    for index in range(count):
        n = index // 2
        vkorg, spart = f"{2000 + n // 100:04d}", f"{n % 100:02d}"
        if index % 2 == 0:
            body = s4.replace(
                b"<number>17100001</number>", f"<number>{S4_CUSTOMERS[n % 5]}</number>".encode()
            )
        else:
            body = ecc
        body = body.replace(
            b"<sap_vkorg>1710</sap_vkorg>", f"<sap_vkorg>{vkorg}</sap_vkorg>".encode()
        )
        body = body.replace(
            b"<sap_vkorg>1000</sap_vkorg>", f"<sap_vkorg>{vkorg}</sap_vkorg>".encode()
        )
        body = body.replace(
            b"<sap_spart>00</sap_spart>", f"<sap_spart>{spart}</sap_spart>".encode()
        )
        out.append(body)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def status_number(pid: int, key: str) -> int:
    """A number from ``/proc/<pid>/status``: memory (KiB), context switches."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(url)


@dataclass
class Processes:
    """Child processes of one run, stopped together."""

    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        # Each child's output goes to a log file of its own in the run's folder: a process that
        # dies mid-run says why there.
        log = cwd / f"{args[0]}-{len(self.children)}.log"
        with log.open("ab") as sink:
            child = subprocess.Popen(
                [sys.executable, "-m", "d365sap", *args],
                env=env,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.children.append(child)
        self.logs.append(log)
        return child

    def check(self) -> None:
        """Fail the run if a child has ended: it would otherwise wait for messages forever."""
        for child, log in zip(self.children, self.logs, strict=True):
            if child.poll() is not None:
                tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise RuntimeError(
                    f"{' '.join(map(str, child.args))} ended ({child.returncode}):\n{tail}"
                )

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.children.clear()
        self.logs.clear()


def write_config(folder: Path, *, s4: int, erp: int, service: int, store: str, kind: str) -> Path:
    config = folder / f"bench-{service}.toml"
    concurrency = "\n".join(f"{queue} = {slots}" for queue, slots in CONCURRENCY.items())
    config.write_text(
        f"""
[service]
port = {service}
[[inbound.users]]
name = "{SERVICE_USER}"
password_env = "BENCH_SERVICE_PASSWORD"
[store]
url = "{store}"
[s4]
base_url = "http://127.0.0.1:{s4}{S4_PATH}"
password_env = "BENCH_EMU_PASSWORD"
[erp]
idoc_url = "http://127.0.0.1:{erp}/sap/bc/srt/idoc?sap-client=001"
password_env = "BENCH_EMU_PASSWORD"
[runtime]
kind = "{kind}"
poll_interval_seconds = 0.5
[runtime.concurrency]
{concurrency}
[logging]
level = "WARNING"
[emulators]
s4_port = {s4}
erp_port = {erp}
dataverse_port = 0
""",
        encoding="utf-8",
    )
    return config


def environment(config: Path) -> dict[str, str]:
    return {
        **os.environ,
        "D365SAP_CONFIG": str(config),
        "BENCH_SERVICE_PASSWORD": SERVICE_PASSWORD,
        "BENCH_EMU_PASSWORD": EMU_PASSWORD,
    }


@dataclass
class Emulators:
    """The emulator process and its URLs."""

    s4_url: str
    erp_url: str

    def set_latency(self, latency_ms: int) -> None:
        for url in (self.s4_url, self.erp_url):
            httpx2.put(f"{url}/emulator/faults", json={"latency_ms": latency_ms}).raise_for_status()

    def reset(self) -> None:
        for url in (self.s4_url, self.erp_url):
            httpx2.post(f"{url}/emulator/reset").raise_for_status()


@dataclass
class Result:
    """One row of the result table."""

    name: str
    latency_ms: int
    count: int
    elapsed: float
    latencies: list[float]
    cpu: float
    peak_rss_kib: int = 0
    rss_growth_kib: int | None = None
    startup_cpu: float | None = None
    """Mean CPU seconds a worker process took to start (not part of ``cpu``)."""
    idle_cpu: float | None = None
    """Mean CPU milliseconds per second of an idle worker process, before the load."""
    around: Result | None = None
    """The baseline measured just before and just after this run (the machine's speed drifts)."""

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.count


def run_baseline(emulators: Emulators, bodies: list[bytes], latency_ms: int) -> Result:
    """Sequential, no store: parse, map, send; the cheapest thing that could possibly work."""
    options, control = S4MappingOptions(), IdocControlSettings()
    base, auth = f"{emulators.s4_url}{S4_PATH}", ("S4_COMM_USER", EMU_PASSWORD)
    erp_auth = ("IDOC_USER", EMU_PASSWORD)
    latencies: list[float] = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with httpx2.Client(timeout=60.0) as client:
        token = client.get(f"{base}/", headers={"x-csrf-token": "Fetch"}, auth=auth).headers[
            "x-csrf-token"
        ]
        for body in bodies:
            began = time.perf_counter()
            message = parse_customer_message(body)
            assert isinstance(message, ErpAccountDetailsMessage)
            if message.linkederporg.erpsystemtype == "S4HC":
                key = sales_area_key(message, options)
                flt = (
                    f"Customer eq '{key.customer}' and SalesOrganization eq "
                    f"'{key.sales_organization}' and DistributionChannel eq "
                    f"'{key.distribution_channel}' and Division eq '{key.division}'"
                )
                client.get(f"{base}/A_CustomerSalesArea", params={"$filter": flt}, auth=auth)
                response = client.post(
                    f"{base}/A_CustomerSalesArea",
                    json=create_payload(message, options),
                    headers={"x-csrf-token": token, "Accept": "application/json"},
                    auth=auth,
                )
            else:
                response = client.post(
                    f"{emulators.erp_url}/sap/bc/srt/idoc?sap-client=001",
                    content=soap_envelope(idoc_from_erp_account_details(message, control)),
                    headers={"Content-Type": "text/xml"},
                    auth=erp_auth,
                )
            if response.status_code >= 400:
                raise RuntimeError(f"baseline: {response.status_code} {response.text[:300]}")
            latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    return Result(
        "baseline (sequential, no store)", latency_ms, len(bodies), elapsed, latencies, cpu
    )


def combine(first: Result, second: Result) -> Result:
    """Two runs of the same thing as one (their totals, so rates and costs are the means)."""
    return Result(
        first.name,
        first.latency_ms,
        first.count + second.count,
        first.elapsed + second.elapsed,
        first.latencies + second.latencies,
        first.cpu + second.cpu,
    )


def request_bytes(port: int, body: bytes) -> bytes:
    """One inbound POST as it goes on the wire, with a message id of its own."""
    credentials = base64.b64encode(f"{SERVICE_USER}:{SERVICE_PASSWORD}".encode()).decode()
    head = (
        f"POST {INBOUND_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {credentials}\r\n"
        "Content-Type: application/xml\r\n"
        "Prefer: respond-async\r\n"
        f"X-Message-Id: {uuid.uuid4().hex}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of one response on a keep-alive connection; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def post_all(port: int, bodies: list[bytes], senders: int, progress: Progress) -> None:
    """Post every message with Prefer: respond-async over keep-alive connections.

    The requests are built before the clock starts and sent over plain sockets: the load
    generator shares the machine's cores with what it measures, and a full HTTP client costs
    about as much CPU per request as the naive baseline spends per message. A send the service
    refuses, or that fails with its connection, is sent again (same message id).
    """
    task = progress.add_task("accepting", total=len(bodies))
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(request_bytes(port, body))

    async def sender() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        done = 0
        while not queue.empty():
            request = queue.get_nowait()
            for _ in range(20):
                try:
                    if connection is None:
                        connection = await asyncio.open_connection("127.0.0.1", port)
                    reader, writer = connection
                    writer.write(request)
                    if await read_status(reader) < 300:
                        break
                except (OSError, asyncio.IncompleteReadError):
                    if connection is not None:
                        connection[1].close()
                    connection = None
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("the service kept refusing a message")
            done += 1
            if done % 25 == 0:
                progress.advance(task, 25)
        progress.advance(task, done % 25)
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    progress.remove_task(task)


def wait_settled(
    url: str, count: int, progress: Progress, children: Processes, pids: list[int]
) -> int | None:
    """Poll /api/stats until every message is final; RSS growth from 25 % to 100 % settled."""
    task = progress.add_task("settling", total=count)
    quarter_rss: int | None = None
    while True:
        counts = httpx2.get(f"{url}/api/stats", timeout=10).json()["messages"]
        settled = sum(counts.get(status, 0) for status in FINAL)
        progress.update(task, completed=settled)
        if quarter_rss is None and settled >= count // 4:
            quarter_rss = sum(status_number(pid, "VmRSS") for pid in pids)
        if settled >= count:
            break
        children.check()
        time.sleep(0.25)
    progress.remove_task(task)
    if counts.get("failed"):
        raise RuntimeError(f"{counts['failed']} messages failed: {counts}")
    final_rss = sum(status_number(pid, "VmRSS") for pid in pids)
    return final_rss - quarter_rss if quarter_rss is not None else None


def timings(store_url: str) -> tuple[float, list[float]]:
    engine = create_engine(store_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT created_at, finished_at FROM messages")).all()
    engine.dispose()

    def moment(value: object) -> float:
        if isinstance(value, str):
            from datetime import datetime

            value = datetime.fromisoformat(value)
        return float(value.timestamp())  # type: ignore[attr-defined]

    pairs = [(moment(c), moment(f)) for c, f in rows]
    elapsed = max(f for _, f in pairs) - min(c for c, _ in pairs)
    return elapsed, [f - c for c, f in pairs]


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    name = f"d365sap_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_engine(
    name: str,
    kind: str,
    workers: int,
    bodies: list[bytes],
    latency_ms: int,
    emulators: Emulators,
    ports: tuple[int, int],
    folder: Path,
    senders: int,
    progress: Progress,
) -> Result:
    emulators.reset()
    with contextlib.ExitStack() as stack:
        if kind == "procrastinate":
            store = stack.enter_context(postgres_database())
        else:
            store = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        running = start_engine(
            stack, store=store, kind=kind, workers=workers, ports=ports, folder=folder
        )
        pids = running.pids
        before = sum(cpu_seconds(pid) for pid in pids)
        asyncio.run(post_all(running.port, bodies, senders, progress))
        growth = wait_settled(running.url, len(bodies), progress, running.children, pids)
        cpu = sum(cpu_seconds(pid) for pid in pids) - before
        peak = sum(status_number(pid, "VmHWM") for pid in pids)
        elapsed, latencies = timings(store)
    return Result(
        name,
        latency_ms,
        len(bodies),
        elapsed,
        latencies,
        cpu,
        peak,
        growth,
        running.startup_cpu,
        running.idle_cpu,
    )


@dataclass
class RunningEngine:
    """The service and worker processes of one run, started and settled down."""

    children: Processes
    port: int
    service_pid: int
    worker_pids: list[int]
    startup_cpu: float | None
    """Mean CPU seconds a worker process took to start (``None`` without workers)."""
    idle_cpu: float | None
    """Mean CPU milliseconds per second of a waiting worker process."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        return [self.service_pid, *self.worker_pids]


def start_engine(
    stack: contextlib.ExitStack,
    *,
    store: str,
    kind: str,
    workers: int,
    ports: tuple[int, int],
    folder: Path,
) -> RunningEngine:
    """Start the service and ``workers`` worker processes on ``store``; stopped with ``stack``.

    Returns once the service answers and every worker process has started and gone idle.
    """
    port = free_port()
    config = write_config(folder, s4=ports[0], erp=ports[1], service=port, store=store, kind=kind)
    env = environment(config)
    children = Processes()
    stack.callback(children.stop)
    service = children.start(["serve"], env, folder)
    wait_http(f"http://127.0.0.1:{port}/health")
    worker_pids = [children.start(["worker"], env, folder).pid for _ in range(workers)]
    startup = wait_started(store, worker_pids, children) if workers else None
    idle = idle_cpu(worker_pids) if workers else None
    return RunningEngine(children, port, service.pid, worker_pids, startup, idle)


@contextlib.contextmanager
def running_emulators(folder: Path) -> Iterator[tuple[Emulators, tuple[int, int]]]:
    """The S/4 and ERP emulators in a process of their own, and their ports, for the block."""
    ports = (free_port(), free_port())
    config = write_config(
        folder,
        s4=ports[0],
        erp=ports[1],
        service=free_port(),
        store="sqlite:///unused.db",
        kind="embedded",
    )
    processes = Processes()
    try:
        processes.start(["emulators"], environment(config), folder)
        emulators = Emulators(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
        wait_http(f"{emulators.s4_url}/emulator/health")
        wait_http(f"{emulators.erp_url}/emulator/health")
        yield emulators, ports
    finally:
        processes.stop()


def idle_cpu(pids: list[int], seconds: float = 2.0) -> float:
    """What a waiting worker process costs: mean CPU milliseconds per second over ``seconds``.

    Polling, heartbeats and upkeep go on whether or not messages arrive, and are paid once per
    worker process: with more processes than cores they are part of the CPU per message.
    """
    before = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(seconds)
    return 1000 * (sum(cpu_seconds(pid) for pid in pids) - before) / seconds / len(pids)


def wait_started(store: str, pids: list[int], children: Processes) -> float:
    """Wait until every worker process has registered and finished starting; their mean CPU.

    A worker spends a few seconds of CPU importing and building its flows before it takes a
    job, more when several start at once on a small machine. That is paid once per process,
    not per message, so the run's CPU is counted from here (and the start-up reported apart).
    """
    engine = create_engine(store)
    deadline = time.monotonic() + 120
    try:
        while True:
            children.check()
            with engine.connect() as connection:
                registered = connection.execute(
                    text("SELECT count(*) FROM procrastinate_workers")
                ).scalar_one()
            if registered >= len(pids) * len(CONCURRENCY):
                before = [cpu_seconds(pid) for pid in pids]
                time.sleep(0.5)
                busy = [cpu_seconds(pid) - spent for pid, spent in zip(pids, before, strict=True)]
                if max(busy) < 0.05:  # under 10 % of a core each: idle, waiting for jobs
                    return sum(cpu_seconds(pid) for pid in pids) / len(pids)
            else:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise TimeoutError("the worker processes did not finish starting in 120 s")
    finally:
        engine.dispose()


def print_results(console: Console, results: list[Result]) -> None:
    table = Table(title="d365sap engine benchmark (loopback, separate processes)")
    for column in (
        "run",
        "latency",
        "messages",
        "msg/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/msg",
        "peak RSS MiB",
        "RSS growth MiB",
    ):
        table.add_column(column, justify="right")
    for r in results:
        ordered = sorted(r.latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        table.add_row(
            r.name,
            f"{r.latency_ms} ms",
            str(r.count),
            f"{r.rate:,.1f}",
            f"{p50:.1f}",
            f"{p99:.1f}",
            f"{r.cpu_ms:.2f}",
            f"{r.peak_rss_kib / 1024:.0f}" if r.peak_rss_kib else "-",
            f"{r.rss_growth_kib / 1024:+.1f}" if r.rss_growth_kib is not None else "-",
        )
    console.print(table)
    for r in results:
        if r.startup_cpu is not None:
            console.print(
                f"{r.latency_ms:>3} ms  {r.name:<34} start-up before the load (not in CPU/msg): "
                f"{r.startup_cpu:.2f} s CPU per worker process"
                + (f"; idle {r.idle_cpu:.1f} ms CPU/s each" if r.idle_cpu is not None else "")
            )
    for latency in sorted({r.latency_ms for r in results}):
        base = next(
            (r for r in results if r.latency_ms == latency and r.name.startswith("base")), None
        )
        if base is None:
            continue
        for r in results:
            if r is base or r.latency_ms != latency:
                continue
            near = r.around or base
            speed = r.rate / near.rate
            cost = r.cpu_ms / near.cpu_ms
            # What the CPU alone allows: the service and worker processes' CPU per message over
            # every core of the machine (PostgreSQL and the emulators compete for them too).
            ceiling = (os.cpu_count() or 1) * 1000 / r.cpu_ms
            console.print(
                f"{latency:>3} ms  {r.name:<34} throughput {speed:5.1f}x baseline"
                f"{'  (target >= 8x)' if latency >= 20 else ''}   "
                f"CPU/message {cost:4.1f}x baseline{'  (target <= 2x)' if latency == 0 else ''}"
                f"   CPU-bound ceiling {ceiling:,.0f} msg/s on {os.cpu_count()} cores"
                f"   (baseline around it: {near.cpu_ms:.2f} ms, {near.rate:.1f} msg/s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--latency", type=int, action="append", help="ms; default 0 and 20")
    parser.add_argument(
        "--runtime",
        action="append",
        help="embedded, procrastinate:1, procrastinate:4 (default all three)",
    )
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--baseline-sample", type=int, default=1000)
    args = parser.parse_args()
    latencies = args.latency or [0, 20]
    runtimes = args.runtime or ["embedded", "procrastinate:1", "procrastinate:4"]
    console = Console(width=max(140, Console().width))
    bodies = messages(args.messages)
    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        folder = Path(tmp)
        with running_emulators(folder) as (emulators, ports):
            for latency in latencies:
                emulators.set_latency(latency)
                sample = bodies[: min(len(bodies), args.baseline_sample)]
                # The baseline runs before, between and after the engine runs, and each engine
                # run is compared with the two measured just around it: the speed of a shared
                # machine drifts by tens of per cent within minutes, and whatever it was doing
                # then weighs on both sides of that comparison.
                emulators.reset()
                baselines = [run_baseline(emulators, sample, latency)]
                engine_runs: list[Result] = []
                for spec in runtimes:
                    kind, _, count = spec.partition(":")
                    workers = int(count or 0)
                    name = f"d365sap {kind}" + (f", {workers} worker(s)" if workers else "")
                    run = run_engine(
                        name,
                        kind,
                        workers,
                        bodies,
                        latency,
                        emulators,
                        ports,
                        folder,
                        args.senders,
                        progress,
                    )
                    emulators.reset()
                    baselines.append(run_baseline(emulators, sample, latency))
                    run.around = combine(baselines[-2], baselines[-1])
                    engine_runs.append(run)
                overall = baselines[0]
                for later in baselines[1:]:
                    overall = combine(overall, later)
                results.append(overall)
                results.extend(engine_runs)
                console.print(
                    f"baseline at {latency} ms, before, between and after the engine runs: "
                    + ", ".join(f"{b.cpu_ms:.2f}" for b in baselines)
                    + " ms CPU/msg; "
                    + ", ".join(f"{b.rate:.1f}" for b in baselines)
                    + " msg/s"
                )
    print_results(console, results)


if __name__ == "__main__":
    main()
