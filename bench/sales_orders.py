"""Sales orders through the flow: Dynamics → S/4 (bulk messages) → the number back in Dynamics.

Run: ``.venv/bin/python bench/sales_orders.py [--orders 2000] [--latency 20] [--bulk-size 20]``

Everything runs as separate processes on loopback: the three emulators (``d365sap emulators``:
Dataverse over TLS with its Entra token endpoint, S/4HANA Cloud with SalesOrderBulkRequest_In
posting its confirmations back to the service) and the service (``d365sap serve``). This script
seeds and measures:

- **seed**: ``--orders`` submitted orders of 1 to 20 lines each (products CP-100, SK-20 and
  SRV-COMM at random, fixed seed) for the account ACC-1002, whose S/4 customer 17100002 is put
  into the service's key registry as the customer flow leaves it;
- **latency**: ``--latency`` ms on every business request of S/4 and Dataverse
  (``/emulator/faults``);
- **the flow**: for each order the script posts the webhook context Dataverse would post for its
  Active → Submitted transition to ``POST /webhooks/dataverse``; the service reads the order from
  Dataverse, maps it, packs it into a bulk message, sends it; S/4 processes the bulk and posts a
  confirmation per order; the service writes S/4's number back to the order in Dataverse.

Each configuration runs on a fresh service and store: one order per request (``bulk_size`` 1)
as the baseline, then orders packed ``--bulk-size`` to a request. Printed per run: orders and
lines per minute until every order was **sent** (S/4 acknowledged it) and until every order was
**numbered in Dynamics**, the SOAP requests (count, orders per request, mean and largest size,
from the outbox), the service's CPU per order, and whether every order exists once in S/4 with
its number in Dynamics; then the gain of packing over one order per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from d365sap.emulators.dataverse.identity import DEMO_CLIENT_SECRET
from d365sap.engine.store import MessageStore
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea

EMU_PASSWORD = "Welcome1!"
WEBHOOK_KEY = "bench-webhook-key"
CONFIRM_USER, CONFIRM_PASSWORD = "s4-confirmations", "bench-confirm"
ACCOUNT = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"  # ACC-1002: S/4 customer 17100002, 1710/10/00
US_PRICE_LIST = "9c3e5a17-2b4d-4f6a-8e01-3d5b7c9e1a01"
PRODUCTS = (
    ("CP-100", "2e6b9d41-7c3a-4f05-8b12-6a9d0c3e5f01"),  # Each
    ("SK-20", "2e6b9d41-7c3a-4f05-8b12-6a9d0c3e5f01"),
    ("SRV-COMM", "2e6b9d41-7c3a-4f05-8b12-6a9d0c3e5f02"),  # Hour
)
CREATED = 100_000_001
FINAL = ("done", "failed", "discarded", "superseded")
console = Console(width=140)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ports:
    s4: int = field(default_factory=free_port)
    erp: int = field(default_factory=free_port)
    dataverse: int = field(default_factory=free_port)
    service: int = field(default_factory=free_port)


def write_config(
    folder: Path,
    ports: Ports,
    *,
    store: str,
    bulk_size: int,
    args: Any,
    name: str | None = None,
    emulated: tuple[int, int, int] | None = None,
) -> Path:
    """The configuration; ``emulated``: (S/4, ERP, Dataverse) ports of one emulator process."""
    tls = folder / "dataverse-tls"
    config = folder / (name or f"d365sap-{bulk_size}.toml")
    s4_port, erp_port, dataverse_port = emulated or (ports.s4, ports.erp, ports.dataverse)
    emulator_tls = tls if dataverse_port == ports.dataverse else folder / "unused-tls"
    config.write_text(
        f"""
[service]
port = {ports.service}
[[inbound.users]]
name = "{CONFIRM_USER}"
roles = ["SalesOrderConfirmation.send"]
password_env = "BENCH_CONFIRM_PASSWORD"
[store]
url = "{store}"
[s4]
base_url = "http://127.0.0.1:{ports.s4}/sap/opu/odata/sap/API_BUSINESS_PARTNER"
password_env = "BENCH_EMU_PASSWORD"
[erp]
idoc_url = "http://127.0.0.1:{ports.erp}/sap/bc/srt/idoc?sap-client=001"
password_env = "BENCH_EMU_PASSWORD"
[dataverse]
environment_url = "https://127.0.0.1:{ports.dataverse}"
authority = "https://127.0.0.1:{ports.dataverse}"
ca_file = "{tls / "ca.pem"}"
[dataverse_flow]
enabled = false
[dataverse_triggers]
webhook_key_env = "BENCH_WEBHOOK_KEY"
[sales_orders]
soap_url = "http://127.0.0.1:{ports.s4}/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in"
password_env = "BENCH_EMU_PASSWORD"
bulk_size = {bulk_size}
bulk_window_ms = {args.window_ms}
[sales_orders.odata]
base_url = "http://127.0.0.1:{ports.s4}/sap/opu/odata/sap/API_SALES_ORDER_SRV"
[sales_orders.write_back]
on_sent = false
[sales_orders.confirmation]
channel = "push"
[runtime]
poll_interval_seconds = 0.2
[runtime.concurrency]
sales_orders = {args.concurrency}
default = 4
[logging]
level = "WARNING"
[emulators]
s4_port = {s4_port}
erp_port = {erp_port}
dataverse_port = {dataverse_port}
[emulators.dataverse]
tls_directory = "{emulator_tls}"
[emulators.s4.sales_orders]
message_log_size = 100000
[emulators.s4.sales_orders.confirmation]
url = "http://127.0.0.1:{ports.service}/sap/SalesOrderConfirmation"
user = "{CONFIRM_USER}"
password = "{CONFIRM_PASSWORD}"
retries = 20
backoff_seconds = 0.5
max_backoff_seconds = 5
""",
        encoding="utf-8",
    )
    return config


@dataclass
class Processes:
    """Child processes, stopped together; their output goes to log files in the work folder."""

    folder: Path
    env: dict[str, str]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        child = subprocess.Popen(
            [sys.executable, "-m", "d365sap", *args],
            env=env or self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.children.append(child)
        return child

    def stop_one(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
        self.children.remove(child)

    def stop(self) -> None:
        for child in list(self.children):
            self.stop_one(child)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, *, verify: Any = True, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError, OSError):
            if httpx2.get(url, timeout=2.0, verify=verify).status_code < 500:
                return
        time.sleep(0.2)
    raise TimeoutError(url)


# the orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededOrder:
    order_id: str
    lines: int


def seed_document(count: int, rng: random.Random) -> tuple[dict[str, Any], list[SeededOrder]]:
    """The packaged seed plus ``count`` submitted orders of 1-20 lines."""
    text_seed = resources.files("d365sap.resources").joinpath("dataverse", "seed.json").read_text()
    document: dict[str, Any] = json.loads(text_seed)
    orders: list[SeededOrder] = []
    for index in range(count):
        order_id = str(uuid.uuid4())
        lines = rng.randint(1, 20)
        details = []
        for position in range(lines):
            product, unit = rng.choice(PRODUCTS)
            details.append(
                {
                    "salesorderdetailid": str(uuid.uuid4()),
                    "salesorderdetailname": product,
                    "productid@odata.bind": f"/products(productnumber='{product}')",
                    "uomid@odata.bind": f"/uoms({unit})",
                    "quantity": rng.randint(1, 50),
                    "lineitemnumber": 10 * (position + 1),
                    "sap_projectflag": position == 0,
                }
            )
        document["salesorders"].append(
            {
                "salesorderid": order_id,
                "name": f"Bench order {index}",
                "ordernumber": f"BENCH-{index:06d}",
                "customerid_account@odata.bind": f"/accounts({ACCOUNT})",
                "pricelevelid@odata.bind": f"/pricelevels({US_PRICE_LIST})",
                "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
                "requestdeliveryby": "2026-12-15",
                "sap_erpsystemtype": 100_000_000,
                "sap_quotenumber": f"QUO-{index:06d}",
                "sap_opportunity": "OPP-BENCH",
                "sap_projectflag": index % 2 == 0,
                "statecode": 1,
                "statuscode": 3,
                "order_details": details,
            }
        )
        orders.append(SeededOrder(order_id, lines))
    return document, orders


def context(order_id: str) -> dict[str, Any]:
    """The context Dataverse's webhook posts for the order's Active → Submitted update."""

    def entity(attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "Attributes": [{"key": k, "value": v} for k, v in attributes.items()],
            "Id": order_id,
            "LogicalName": "salesorder",
        }

    option = "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts"
    return {
        "CorrelationId": str(uuid.uuid4()),
        "InputParameters": [
            {
                "key": "Target",
                "value": entity(
                    {"salesorderid": order_id, "statecode": {"__type": option, "Value": 1}}
                ),
            }
        ],
        "MessageName": "Update",
        "PreEntityImages": [{"key": "pre", "value": entity({"statecode": {"Value": 0}})}],
        "PrimaryEntityId": order_id,
        "PrimaryEntityName": "salesorder",
        "RequestId": str(uuid.uuid4()),
    }


async def post_contexts(service_url: str, orders: list[SeededOrder], senders: int) -> None:
    queue: asyncio.Queue[SeededOrder] = asyncio.Queue()
    for order in orders:
        queue.put_nowait(order)
    async with httpx2.AsyncClient(
        timeout=60.0, limits=httpx2.Limits(max_connections=senders)
    ) as client:

        async def sender() -> None:
            while not queue.empty():
                order = queue.get_nowait()
                body = json.dumps(context(order.order_id)).encode()
                for _ in range(20):
                    with contextlib.suppress(httpx2.HTTPError):
                        answer = await client.post(
                            f"{service_url}/webhooks/dataverse",
                            content=body,
                            headers={
                                "Content-Type": "application/json",
                                "x-d365sap-webhook-key": WEBHOOK_KEY,
                            },
                        )
                        if answer.status_code < 300:
                            break
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"the service did not take order {order.order_id}")

        await asyncio.gather(*(sender() for _ in range(senders)))


# measuring -------------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    bulk_size: int
    orders: int
    lines: int
    sent_seconds: float
    numbered_seconds: float
    requests: int
    sizes: list[int]
    orders_per_request: float
    cpu: float
    s4_cpu: float
    dataverse_cpu: float
    in_s4_once: int
    numbered: int
    failed: int

    def per_minute(self, count: int, seconds: float) -> float:
        return count / seconds * 60 if seconds else 0.0


FINAL_SQL = text("SELECT status, count(*) FROM messages WHERE flow = :flow GROUP BY status")


def settled(engine: Any, flow: str) -> tuple[int, int]:
    """How many of ``flow``'s messages are final, and how many of them failed."""
    with engine.connect() as connection:
        counts = dict(connection.execute(FINAL_SQL, {"flow": flow}).all())
    final = sum(int(n) for status, n in counts.items() if status in FINAL)
    return final, int(counts.get("failed", 0))


def span(engine: Any, flow: str) -> float:
    """Seconds from the flow's first arrival to its last finish."""
    return float((_last(engine, flow) - _first(engine, flow)).total_seconds())


def wait_for(engine: Any, flow: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        final, _ = settled(engine, flow)
        if final >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{flow}: {final} of {count} settled after {timeout} s")
        time.sleep(0.25)


def check(s4: str, dataverse: str, ca: Path, orders: list[SeededOrder]) -> tuple[int, int]:
    """(orders S/4 holds exactly once, orders numbered in Dataverse)."""
    counted: dict[str, int] = {}
    with httpx2.Client(timeout=300.0) as client:
        messages = client.get(f"{s4}/emulator/sales-orders/messages").json()["messages"]
    for message in messages:
        for outcome in message["orders"]:
            if outcome["status"] == "created" and outcome.get("crm_order_id"):
                counted[outcome["crm_order_id"]] = counted.get(outcome["crm_order_id"], 0) + 1
    with httpx2.Client(timeout=300.0, verify=str(ca)) as client:
        rows = client.get(f"{dataverse}/emulator/rows/salesorders").json()["value"]
    numbered = {
        r["salesorderid"]
        for r in rows
        if r.get("sap_orderstatus") == CREATED and r.get("sap_salesordernumber")
    }
    once = sum(1 for order in orders if counted.get(order.order_id) == 1)
    return once, sum(1 for order in orders if order.order_id in numbered)


def run_once(
    name: str,
    bulk_size: int,
    orders: list[SeededOrder],
    args: Any,
    folder: Path,
    ports: Ports,
    processes: Processes,
    env: dict[str, str],
    emulators: dict[str, subprocess.Popen[bytes]],
) -> Run:
    s4 = f"http://127.0.0.1:{ports.s4}"
    dataverse = f"https://127.0.0.1:{ports.dataverse}"
    ca = folder / "dataverse-tls" / "ca.pem"
    httpx2.post(f"{s4}/emulator/reset", timeout=60).raise_for_status()
    with httpx2.Client(timeout=300.0, verify=str(ca)) as client:
        client.delete(f"{dataverse}/emulator/limits").raise_for_status()
    s4_latency = args.latency if args.s4_latency is None else args.s4_latency
    for url, verify, latency in ((s4, True, s4_latency), (dataverse, str(ca), args.latency)):
        with httpx2.Client(timeout=30.0, verify=verify) as client:
            client.delete(f"{url}/emulator/faults").raise_for_status()
            client.put(f"{url}/emulator/faults", json={"latency_ms": latency}).raise_for_status()
    store_path = folder / f"store-{bulk_size}.db"
    store_url = f"sqlite:///{store_path}"
    config = write_config(folder, ports, store=store_url, bulk_size=bulk_size, args=args)
    run_env = {**env, "D365SAP_CONFIG": str(config)}
    store = MessageStore.open(store_url)
    registry = KeyRegistry(store)
    key = RecordKey("s4hc", ACCOUNT, SalesArea("1710", "10", "00"), str(uuid.uuid4()))
    registry.reserve(key, "bench", customer="17100002")
    registry.confirm(key, "bench", customer="17100002")
    store.close()
    service = processes.start(f"serve-{bulk_size}", "serve", env=run_env)
    try:
        wait_http(f"http://127.0.0.1:{ports.service}/health")
        engine = create_engine(store_url)
        cpu_before = cpu_seconds(service.pid)
        emulators_before = {name: cpu_seconds(p.pid) for name, p in emulators.items()}
        console.print(
            f"[bold]{name}[/]: {len(orders)} orders, {sum(o.lines for o in orders)} lines"
        )
        asyncio.run(post_contexts(f"http://127.0.0.1:{ports.service}", orders, args.senders))
        wait_for(engine, "sales_order", len(orders), args.timeout)
        sent_seconds = span(engine, "sales_order")
        wait_for(engine, "sales_order_confirmation", len(orders), args.timeout)
        first_order = _first(engine, "sales_order")
        last_confirmation = _last(engine, "sales_order_confirmation")
        numbered_seconds = (last_confirmation - first_order).total_seconds()
        cpu = cpu_seconds(service.pid) - cpu_before
        spent = {n: cpu_seconds(p.pid) - emulators_before[n] for n, p in emulators.items()}
        with engine.connect() as connection:
            sizes = [
                int(n)
                for (n,) in connection.execute(text("SELECT length(body) FROM outbox_batches"))
            ]
            items = int(connection.execute(text("SELECT count(*) FROM outbox_items")).scalar_one())
        _, failed_orders = settled(engine, "sales_order")
        _, failed_words = settled(engine, "sales_order_confirmation")
        engine.dispose()
    finally:
        processes.stop_one(service)
    in_s4, numbered = check(s4, dataverse, ca, orders)
    return Run(
        name=name,
        bulk_size=bulk_size,
        orders=len(orders),
        lines=sum(o.lines for o in orders),
        sent_seconds=sent_seconds,
        numbered_seconds=numbered_seconds,
        requests=len(sizes),
        sizes=sizes,
        orders_per_request=items / len(sizes) if sizes else 0.0,
        cpu=cpu,
        s4_cpu=spent["s4"],
        dataverse_cpu=spent["dataverse"],
        in_s4_once=in_s4,
        numbered=numbered,
        failed=failed_orders + failed_words,
    )


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first(engine: Any, flow: str) -> datetime:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT min(created_at) FROM messages WHERE flow = :flow"), {"flow": flow}
        ).scalar_one()
    return _moment(value)


def _last(engine: Any, flow: str) -> datetime:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT max(finished_at) FROM messages WHERE flow = :flow"), {"flow": flow}
        ).scalar_one()
    return _moment(value)


def print_results(runs: list[Run], latency: int, s4_latency: int | None) -> None:
    shown = f"{latency} ms" if s4_latency in (None, latency) else f"{latency} ms ({s4_latency} S/4)"
    table = Table(title=f"Sales orders through the flow, {shown} back-end latency")
    for column in (
        "run",
        "orders/min sent",
        "lines/min sent",
        "orders/min numbered",
        "lines/min numbered",
        "SOAP requests",
        "orders/request",
        "request KB mean / max",
        "CPU ms/order service / S/4 / Dataverse",
        "in S/4 once",
        "numbered",
        "failed",
    ):
        table.add_column(column, justify="right" if column != "run" else "left")
    for run in runs:
        mean = sum(run.sizes) / len(run.sizes) / 1024 if run.sizes else 0.0
        largest = max(run.sizes) / 1024 if run.sizes else 0.0
        table.add_row(
            run.name,
            f"{run.per_minute(run.orders, run.sent_seconds):,.0f}",
            f"{run.per_minute(run.lines, run.sent_seconds):,.0f}",
            f"{run.per_minute(run.orders, run.numbered_seconds):,.0f}",
            f"{run.per_minute(run.lines, run.numbered_seconds):,.0f}",
            f"{run.requests:,}",
            f"{run.orders_per_request:.1f}",
            f"{mean:.1f} / {largest:.1f}",
            f"{1000 * run.cpu / run.orders:.0f} / {1000 * run.s4_cpu / run.orders:.0f} / "
            f"{1000 * run.dataverse_cpu / run.orders:.0f}",
            f"{run.in_s4_once}/{run.orders}",
            f"{run.numbered}/{run.orders}",
            str(run.failed),
        )
    console.print(table)
    if len(runs) == 2:
        single, packed = runs
        sent_gain = packed.per_minute(packed.orders, packed.sent_seconds) / max(
            single.per_minute(single.orders, single.sent_seconds), 1e-9
        )
        numbered_gain = packed.per_minute(packed.orders, packed.numbered_seconds) / max(
            single.per_minute(single.orders, single.numbered_seconds), 1e-9
        )
        console.print(
            f"packing {packed.bulk_size} orders per request: {sent_gain:.1f}x the orders per "
            f"minute sent, {numbered_gain:.1f}x numbered in Dynamics, "
            f"{single.requests / max(packed.requests, 1):.1f}x fewer SOAP requests than one "
            "order per request"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=20, help="ms on S/4 and Dataverse")
    parser.add_argument("--s4-latency", type=int, help="ms on S/4 only (default --latency)")
    parser.add_argument("--bulk-size", type=int, default=20, help="orders per bulk message")
    parser.add_argument("--window-ms", type=float, default=50.0, help="bulk_window_ms")
    parser.add_argument("--concurrency", type=int, default=40, help="sales_orders queue")
    parser.add_argument("--senders", type=int, default=32, help="concurrent webhook posts")
    parser.add_argument("--no-baseline", action="store_true", help="skip one order per request")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the orders")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="d365sap-bench-orders-"))
    ports = Ports()
    env = {
        **os.environ,
        "BENCH_EMU_PASSWORD": EMU_PASSWORD,
        "BENCH_CONFIRM_PASSWORD": CONFIRM_PASSWORD,
        "BENCH_WEBHOOK_KEY": WEBHOOK_KEY,
        "D365SAP_DATAVERSE__CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    processes = Processes(folder, env)
    console.print(f"work folder {folder}")
    runs: list[Run] = []
    emulators: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # S/4 and Dataverse in processes of their own (each process runs the other emulators
        # too, idle, on ports nobody uses), so neither waits for the other's CPU.
        for name, emulated in (
            ("emulators-s4", (ports.s4, 0, 0)),
            ("emulators-dataverse", (0, ports.erp, ports.dataverse)),
        ):
            config = write_config(
                folder,
                ports,
                store="sqlite:///unused.db",
                bulk_size=1,
                args=args,
                name=f"{name}.toml",
                emulated=emulated,
            )
            emulators[name.removeprefix("emulators-")] = processes.start(
                name, "emulators", env={**env, "D365SAP_CONFIG": str(config)}
            )
        wait_http(f"http://127.0.0.1:{ports.s4}/emulator/health")
        ca = folder / "dataverse-tls" / "ca.pem"
        deadline = time.monotonic() + 60
        while not ca.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_http(f"https://127.0.0.1:{ports.dataverse}/emulator/health", verify=str(ca))
        plans = [] if args.no_baseline else [("one order per request", 1)]
        plans.append((f"{args.bulk_size} orders per request", args.bulk_size))
        # One seed for all runs (seeding is slow): each run has its own orders.
        started = time.perf_counter()
        document, orders = seed_document(args.orders * len(plans), random.Random(args.seed))
        with httpx2.Client(timeout=3600.0, verify=str(ca)) as client:
            seeded = client.put(f"https://127.0.0.1:{ports.dataverse}/emulator/seed", json=document)
            seeded.raise_for_status()
        console.print(
            f"seeded {len(orders)} orders in Dataverse in {time.perf_counter() - started:.0f} s"
        )
        for number, (name, size) in enumerate(plans):
            mine = orders[number * args.orders : (number + 1) * args.orders]
            runs.append(run_once(name, size, mine, args, folder, ports, processes, env, emulators))
    finally:
        processes.stop()
        console.print(f"logs in {folder}")
    print_results(runs, args.latency, args.s4_latency)
    complete = all(r.in_s4_once == r.orders and r.numbered == r.orders for r in runs)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
