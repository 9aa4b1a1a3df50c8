"""Initial load of customers from Dataverse into SAP: ``d365sap load customers`` against a naive
sequential script, on the same emulators with the same injected latency.

Run: ``.venv/bin/python bench/load_customers.py [--accounts 10000] [--latency 20]``

Everything runs as separate processes on loopback: the three emulators (``d365sap emulators``:
Dataverse over TLS with its Entra token endpoint, S/4HANA Cloud, SAP ERP), the service
(``d365sap serve``, running the native customer flow) and ``d365sap load customers``. This
script seeds, injects latency, starts them and measures:

- **seed**: N new customers in Dataverse (``PUT /emulator/seed``: the packaged seed plus, per
  customer, an account, an ERP account and an ERP account detail, linked to the S/4HANA Cloud
  organisation 1710/10/00 or, for ``--erp-share`` of them, to the SAP ERP organisation
  1000/10/00), none known to SAP yet: every one is created there and its number written back;
- **latency**: ``--latency`` ms on every business request of all three emulators
  (``/emulator/faults``);
- **baseline**: a naive sequential script on ``--baseline-accounts`` further accounts (S/4
  only), one account at a time: GET the account with its ERP account and detail, GET the linked
  organisation, POST the business partner to S/4 (its CSRF token fetched once), PATCH the
  number back onto the detail. Its rate does not depend on the count;
- **load**: ``d365sap load customers --filter "startswith(accountnumber,'LOAD-')"`` from start
  until every message is settled, as the command reports it.

The baseline's sample is too short to meet Dataverse's limits; it is also shown held to the
budget (``[dataverse.throttle]``: 5000 requests per 300 s) at its own calls per record, the rate
it could keep over 10 000 records. A load shorter than the budget's window is not held by it
either: the budget shows from a few thousand records on.

Printed: records per minute of both, API calls per record per system (each emulator's count of
business requests, ``/emulator/faults``), Dataverse's service protection as the emulator saw it
(most requests in its 300 s window, 429 answers), the time spent waiting on the shared throttle
(load command and service), and whether every customer reached SAP exactly once with its
number written back. The target: at least 5 000 records per minute on a 2-core machine while
staying under the Dataverse budget (for scale, Microsoft documents dual-write's initial sync at
about 100 records per minute).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
from rich.console import Console
from rich.table import Table

from d365sap.config_create import S4CreateSettings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.mapping.dataverse_customer import CustomerRows, new_customer
from d365sap.mapping.s4_business_partner import business_partner_payload

TARGET_PER_MINUTE = 5000
BUDGET_PER_MINUTE = 5000 / 5  # [dataverse.throttle] defaults: 5000 requests per 300 s
DUAL_WRITE_PER_MINUTE = 100
EMU_PASSWORD = "Welcome1!"
TENANT = "6f1c2a4e-8b3d-4c5e-9a7f-0d2b4e6c8a10"
S4_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
ORG_S4 = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"  # S4HC 1710/10/00 of the packaged seed
ORG_ERP = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"  # ECC 1000/10/00
CITIES = (("Palo Alto", "94304", "CA", "US"), ("Dortmund", "44135", "", "DE"))
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- seed -------------------------------------------------------------------------------------


def customer_rows(prefix: str, index: int, org: str) -> tuple[dict[str, Any], ...]:
    """An account with its ERP account and ERP account detail, linked to ``org``."""
    account, erp_account, detail = (str(uuid.uuid4()) for _ in range(3))
    city, postal_code, region, country = CITIES[0 if org == ORG_S4 else 1]
    name = f"{'Load' if prefix == 'LOAD' else 'Baseline'} Customer {index:05d}"
    return (
        {
            "accountid": account,
            "name": name,
            "accountnumber": f"{prefix}-{index:06d}",
            "address1_line1": f"{index} Market Street",
            "address1_city": city,
            "address1_postalcode": postal_code,
            "address1_stateorprovince": region or None,
            "address1_country": country,
            "telephone1": f"+1 650 555-{index % 10000:04d}",
        },
        {
            "sap_erpaccountid": erp_account,
            "sap_name": name,
            "sap_accountid@odata.bind": f"/accounts({account})",
            "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
            "sap_name1": name,
            "sap_language": "EN" if org == ORG_S4 else "DE",
        },
        {
            "sap_erpaccountdetailid": detail,
            "sap_name": f"{name} / sales area",
            "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({erp_account})",
            "sap_accountid@odata.bind": f"/accounts({account})",
            "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
            "sap_customergroup": "01",
            "sap_currency": "USD" if org == ORG_S4 else "EUR",
        },
    )


def seed_document(accounts: int, baseline: int, erp_share: float) -> dict[str, Any]:
    """The packaged seed plus the load's and the baseline's customers."""
    text = resources.files("d365sap.resources").joinpath("dataverse", "seed.json").read_text()
    document: dict[str, Any] = json.loads(text)
    every_erp = round(1 / erp_share) if erp_share > 0 else 0
    rows: list[tuple[dict[str, Any], ...]] = []
    for index in range(accounts):
        erp = every_erp and index % every_erp == every_erp - 1
        rows.append(customer_rows("LOAD", index, ORG_ERP if erp else ORG_S4))
    rows += [customer_rows("BASE", index, ORG_S4) for index in range(baseline)]
    for position, entity_set in enumerate(("accounts", "sap_erpaccounts", "sap_erpaccountdetails")):
        document[entity_set] = document.get(entity_set, []) + [row[position] for row in rows]
    return document


# -- processes ----------------------------------------------------------------------------------


@dataclass
class Ports:
    s4: int = field(default_factory=free_port)
    erp: int = field(default_factory=free_port)
    dataverse: int = field(default_factory=free_port)
    service: int = field(default_factory=free_port)


def write_config(folder: Path, ports: Ports, *, store: str, concurrency: int) -> Path:
    tls = folder / "dataverse-tls"
    config = folder / "d365sap.toml"
    config.write_text(
        f"""
[service]
port = {ports.service}
[store]
url = "{store}"
[s4]
base_url = "http://127.0.0.1:{ports.s4}{S4_PATH}"
password_env = "BENCH_EMU_PASSWORD"
[erp]
idoc_url = "http://127.0.0.1:{ports.erp}/sap/bc/srt/idoc?sap-client=001"
status_url = "http://127.0.0.1:{ports.erp}/sap/bc/srt/rfc/sap/zidoc_read_completely/001/zidoc_read_completely/binding"
password_env = "BENCH_EMU_PASSWORD"
[dataverse]
environment_url = "https://127.0.0.1:{ports.dataverse}"
authority = "https://127.0.0.1:{ports.dataverse}"
ca_file = "{tls / "ca.pem"}"
[dataverse_flow]
enabled = true
[runtime]
poll_interval_seconds = 0.2
[runtime.concurrency]
dataverse = {concurrency}
s4hc = 16
erp = 8
default = 4
[logging]
level = "WARNING"
[emulators]
s4_port = {ports.s4}
erp_port = {ports.erp}
dataverse_port = {ports.dataverse}
[emulators.dataverse]
tls_directory = "{tls}"
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

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        child = subprocess.Popen(
            [sys.executable, "-m", "d365sap", *args],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU of the children this process has waited for (the load command, once it ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_http(url: str, *, verify: Any = True, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError, OSError):
            if httpx2.get(url, timeout=2.0, verify=verify).status_code < 500:
                return
        time.sleep(0.2)
    raise TimeoutError(url)


@dataclass
class Systems:
    """Admin access to the three emulators."""

    s4: str
    erp: str
    dataverse: str
    ca_file: Path

    def http(self, url: str) -> httpx2.Client:
        verify: Any = str(self.ca_file) if url.startswith("https") else True
        return httpx2.Client(base_url=url, timeout=300.0, verify=verify)

    def each(self) -> Iterator[tuple[str, str]]:
        yield from (
            ("Dataverse", self.dataverse),
            ("S/4HANA Cloud", self.s4),
            ("SAP ERP", self.erp),
        )

    def set_latency(self, latency_ms: int) -> None:
        for _, url in self.each():
            with self.http(url) as client:
                client.delete("/emulator/faults").raise_for_status()
                client.put("/emulator/faults", json={"latency_ms": latency_ms}).raise_for_status()
        with self.http(self.dataverse) as client:
            client.delete("/emulator/limits").raise_for_status()

    def requests(self) -> dict[str, int]:
        """Business requests each emulator has answered since its counters were reset."""
        counts = {}
        for name, url in self.each():
            with self.http(url) as client:
                counters = client.get("/emulator/faults").json()["counters"]
            counts[name] = int(counters.get("requests", 0))
        return counts


class LimitWatch:
    """Samples Dataverse's service protection usage every second (the window's peak, 429s)."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self.peak = 0
        self.throttled: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.systems.http(self.systems.dataverse) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx2.HTTPError):
                    users = client.get("/emulator/limits").json()["users"]
                    for usage in users.values():
                        self.peak = max(self.peak, int(usage["requests"]))
                        self.throttled = {k: int(v) for k, v in usage["throttled"].items()}
                self._stop.wait(1.0)

    def __enter__(self) -> LimitWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# -- baseline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The naive script's run: its rate, and the rate Dataverse's budget would let it keep."""

    records: int
    seconds: float
    dataverse_requests: int

    @property
    def per_minute(self) -> float:
        return self.records / self.seconds * 60

    @property
    def within_budget(self) -> float:
        """Its rate held to the budget (the sample is too small to meet the limit itself)."""
        per_record = self.dataverse_requests / self.records
        return min(self.per_minute, BUDGET_PER_MINUTE / per_record)


async def baseline(systems: Systems, count: int) -> Baseline:
    """The naive sequential script on ``count`` baseline accounts."""
    tokens = MsalTokenProvider(
        authority=systems.dataverse,
        tenant=TENANT,
        client_id=DEMO_CLIENT_ID,
        environment_url=systems.dataverse,
        client_secret=DEMO_CLIENT_SECRET,
        ca_file=systems.ca_file,
    )
    dataverse = DataverseClient(systems.dataverse, tokens, ca_file=systems.ca_file)
    s4 = S4ODataClient(f"{systems.s4}{S4_PATH}", user="S4_COMM_USER", password=EMU_PASSWORD)
    async with dataverse, s4:
        ids = [
            row["accountid"]
            async for page in dataverse.pages(
                "accounts",
                select=["accountid"],
                filter="startswith(accountnumber,'BASE-')",
                page_size=5000,
            )
            for row in page.rows
        ][:count]
        started = time.perf_counter()
        before = dataverse.stats.requests
        for account_id in ids:
            account = await dataverse.get(
                "accounts",
                account_id,
                expand=["sap_account_sap_erpaccount", "sap_account_sap_erpaccountdetail"],
            )
            erp_account = account.pop("sap_account_sap_erpaccount")[0]
            detail = account.pop("sap_account_sap_erpaccountdetail")[0]
            org = await dataverse.get("sap_linkederporgs", detail["_sap_linkederporgid_value"])
            customer = new_customer(CustomerRows(account, erp_account, detail, org))
            created = await s4.create_business_partner(
                business_partner_payload(customer, S4CreateSettings())
            )
            await dataverse.update(
                "sap_erpaccountdetails",
                detail["sap_erpaccountdetailid"],
                {"sap_sapcustomernumber": created.customer or created.business_partner},
            )
        elapsed = time.perf_counter() - started
        requests = dataverse.stats.requests - before
    tokens.close()
    return Baseline(len(ids), elapsed, requests)


# -- the run ------------------------------------------------------------------------------------


def check_sap(systems: Systems, accounts: int) -> tuple[int, int]:
    """Load customers with their number written back, and those without one."""
    with systems.http(systems.dataverse) as client:
        rows = client.get("/emulator/rows/sap_erpaccountdetails").json()["value"]
    loaded = [row for row in rows if str(row.get("sap_name", "")).startswith("Load Customer")]
    numbered = sum(1 for row in loaded if row.get("sap_sapcustomernumber"))
    return numbered, accounts - numbered


def s4_partners(systems: Systems) -> int:
    """Business partners in the S/4 emulator."""
    with systems.http(systems.s4) as client:
        counts = client.get("/emulator/health").json()["entities"]
    return int(counts.get("A_BusinessPartner", 0))


def run(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="d365sap-bench-load-"))
    ports = Ports()
    store = args.store or f"sqlite:///{folder / 'store.db'}"
    config = write_config(folder, ports, store=store, concurrency=args.concurrency)
    env = {
        **os.environ,
        "D365SAP_CONFIG": str(config),
        "BENCH_EMU_PASSWORD": EMU_PASSWORD,
        "D365SAP_DATAVERSE__CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "COLUMNS": "120",
    }
    processes = Processes(folder, env)
    systems = Systems(
        s4=f"http://127.0.0.1:{ports.s4}",
        erp=f"http://127.0.0.1:{ports.erp}",
        dataverse=f"https://127.0.0.1:{ports.dataverse}",
        ca_file=folder / "dataverse-tls" / "ca.pem",
    )
    console.print(f"work folder {folder}")
    try:
        emulators = processes.start("emulators", "emulators")
        wait_http(f"{systems.s4}/emulator/health")
        wait_http(f"{systems.erp}/emulator/health")
        deadline = time.monotonic() + 60
        while not systems.ca_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_http(f"{systems.dataverse}/emulator/health", verify=str(systems.ca_file))
        started = time.perf_counter()
        with systems.http(systems.dataverse) as client:
            document = seed_document(args.accounts, args.baseline_accounts, args.erp_share)
            client.put("/emulator/seed", json=document).raise_for_status()
        console.print(
            f"seeded {args.accounts} + {args.baseline_accounts} customers "
            f"in {time.perf_counter() - started:.1f} s"
        )
        systems.set_latency(args.latency)
        naive = asyncio.run(baseline(systems, args.baseline_accounts))
        console.print(
            f"baseline: {naive.records} accounts in {naive.seconds:.1f} s "
            f"({naive.per_minute:.0f} records/minute, {naive.dataverse_requests} Dataverse "
            "requests)"
        )
        service = processes.start("serve", "serve")
        wait_http(f"http://127.0.0.1:{ports.service}/health")
        systems.set_latency(args.latency)  # counters from zero: the load alone
        report = folder / "load-report.json"
        cpu_before = (cpu_seconds(service.pid), cpu_seconds(emulators.pid), children_cpu())
        with LimitWatch(systems) as limits:
            load = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "d365sap",
                    "load",
                    "customers",
                    "--filter",
                    "startswith(accountnumber,'LOAD-')",
                    "--report",
                    str(report),
                    "--timeout",
                    str(args.timeout),
                ],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
        cpu = {
            "service": cpu_seconds(service.pid) - cpu_before[0],
            "emulators (all three)": cpu_seconds(emulators.pid) - cpu_before[1],
            "load command": children_cpu() - cpu_before[2],
        }
        (folder / "load.log").write_text(load.stdout + load.stderr, encoding="utf-8")
        if not report.exists():
            console.print(load.stdout[-3000:], load.stderr[-3000:])
            return 1
        outcome = json.loads(report.read_text(encoding="utf-8"))
        requests = systems.requests()
        numbered, missing = check_sap(systems, args.accounts)
        service_stats = service_dataverse_stats(ports.service)
        print_results(
            args,
            outcome=outcome,
            requests=requests,
            limits=limits,
            naive=naive,
            numbered=numbered,
            missing=missing,
            service_stats=service_stats,
            partners=s4_partners(systems),
            cpu=cpu,
        )
        return 0 if load.returncode == 0 and missing == 0 else 1
    finally:
        processes.stop()
        console.print(f"logs in {folder}")


def service_dataverse_stats(port: int) -> dict[str, Any]:
    """The service's Dataverse client and throttle statistics, when it publishes them."""
    with contextlib.suppress(httpx2.HTTPError, ValueError):
        response = httpx2.get(f"http://127.0.0.1:{port}/api/dataverse/stats", timeout=10.0)
        if response.status_code == 200:
            document: dict[str, Any] = response.json()
            return document
    return {}


def print_results(
    args: argparse.Namespace,
    *,
    outcome: dict[str, Any],
    requests: dict[str, int],
    limits: LimitWatch,
    naive: Baseline,
    numbered: int,
    missing: int,
    service_stats: dict[str, Any],
    partners: int,
    cpu: dict[str, float],
) -> None:
    seconds = float(outcome["seconds"])
    records = args.accounts
    rate = records / seconds * 60
    totals = outcome["summary"]["totals"]
    service_throttle = service_stats.get("throttle", {})
    waited = float(outcome["throttle"]["waited_seconds"]) + float(
        service_throttle.get("waited_seconds", 0.0)
    )
    table = Table(title=f"Initial load of {records} customers, {args.latency} ms per call")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("load: wall time (submit to last settled)", f"{seconds:.1f} s")
    table.add_row("load: records per minute", f"{rate:,.0f}")
    table.add_row(
        f"baseline (naive sequential, {naive.records} records): records per minute",
        f"{naive.per_minute:,.0f}",
    )
    table.add_row(
        "baseline held to the Dataverse budget: records per minute",
        f"{naive.within_budget:,.0f} ({naive.dataverse_requests / naive.records:.2f} calls each)",
    )
    table.add_row("speed-up over the baseline (budget-bound)", f"{rate / naive.within_budget:.1f}x")
    table.add_row("for scale: dual-write initial sync (documented)", f"~{DUAL_WRITE_PER_MINUTE}")
    for system, count in requests.items():
        table.add_row(f"{system} API calls per record", f"{count / records:.2f} ({count:,})")
    for process, seconds_used in cpu.items():
        table.add_row(f"CPU per record: {process}", f"{seconds_used / records * 1000:.1f} ms")
    table.add_row("Dataverse: most requests in a 300 s window (limit 6000)", f"{limits.peak:,}")
    table.add_row("Dataverse: 429 answers", json.dumps(limits.throttled or {}))
    table.add_row("throttle waits (load command + service)", f"{waited:.1f} s")
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in totals.items() if v) or "none")
    table.add_row("details with the SAP number written back", f"{numbered:,} of {records:,}")
    table.add_row("business partners in S/4 (seed included)", str(partners))
    console.print(table)
    refused = sum(limits.throttled.values())
    met = rate >= TARGET_PER_MINUTE and not refused and limits.peak <= 6000
    verdict = "[green]met[/]" if met else "[red]not met[/]"
    console.print(
        f"target: at least {TARGET_PER_MINUTE:,} records/minute within the Dataverse budget: "
        f"{verdict} ({rate:,.0f}/minute, peak {limits.peak:,} requests per 300 s"
        f"{', no 429' if not refused else f', {refused} refused with 429'}); "
        f"missing write-backs: {missing}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--latency", type=int, default=20, help="ms per call, all emulators")
    parser.add_argument("--baseline-accounts", type=int, default=200)
    parser.add_argument(
        "--erp-share", type=float, default=0.2, help="share of customers created in SAP ERP"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="[runtime.concurrency] dataverse"
    )
    parser.add_argument("--store", help="store URL (default: a SQLite file in the work folder)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
