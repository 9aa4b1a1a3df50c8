"""Customer flow throughput: the d365sap service versus a naive direct script, same emulators.

Run: ``.venv/bin/python bench/customer_flow.py [--messages N] [--concurrency C]``

Both sides run against the same S/4HANA Cloud and SAP ERP emulators on loopback, in this process:

- **d365sap**: N messages (half S/4 sales areas, half ERP IDocs) posted to the inbound endpoint;
  each is persisted, parsed, routed, mapped, sent (GET + POST/PATCH, or IDoc) and recorded.
- **baseline**: a plain sequential script with one httpx2 client and no store, sending the same
  mapped requests straight to the emulators (CSRF fetched once).

It prints messages/s, p50/p99 latency per message and the per-message overhead of the service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

import httpx2
import structlog
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from d365sap.config import IdocControlSettings, Settings
from d365sap.connectors.idoc import soap_envelope
from d365sap.demo import DEMO_PASSWORD, DEMO_USER, INBOUND_PATH, S4_SERVICE, DemoEnvironment
from d365sap.mapping.crm_xml import ErpAccountDetailsMessage, parse_customer_message
from d365sap.mapping.debmas import idoc_from_erp_account_details
from d365sap.mapping.s4_sales_area import S4MappingOptions, create_payload, sales_area_key

S4_TEMPLATE = Path(__file__).resolve().parents[1] / "src/d365sap/resources/examples"


def messages(count: int) -> list[bytes]:
    """Distinct messages: S/4 sales areas of the seeded customers, ERP details of 100123."""
    s4 = (S4_TEMPLATE / "in_erpaccountdetails_S4HC.xml").read_bytes()
    ecc = (S4_TEMPLATE / "in_erpaccountdetails_ECC.xml").read_bytes()
    out: list[bytes] = []
    for index in range(count):
        if index % 2 == 0:
            # distinct sales areas of customer 17100001: sales office varies, keys via division
            division = f"{index // 2 % 100:02d}"
            vkorg = f"{1000 + index // 200:04d}"
            body = s4.replace(
                b"<sap_spart>00</sap_spart>", f"<sap_spart>{division}</sap_spart>".encode()
            )
            body = body.replace(
                b"<sap_vkorg>1710</sap_vkorg>", f"<sap_vkorg>{vkorg}</sap_vkorg>".encode()
            )
            out.append(body)
        else:
            out.append(
                ecc.replace(
                    b"<salesgroup>101</salesgroup>",
                    f"<salesgroup>{index % 999:03d}</salesgroup>".encode(),
                )
            )
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run_service(env: DemoEnvironment, bodies: list[bytes], concurrency: int) -> list[float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency)
    async with httpx2.AsyncClient(timeout=60.0, limits=limits) as client:

        async def one(body: bytes) -> None:
            async with semaphore:
                start = time.perf_counter()
                response = await client.post(
                    f"{env.service_url}{INBOUND_PATH}",
                    content=body,
                    headers={"Content-Type": "application/xml"},
                    auth=(DEMO_USER, DEMO_PASSWORD),
                )
                latencies.append(time.perf_counter() - start)
                if response.status_code >= 400:
                    raise RuntimeError(response.text)

        await asyncio.gather(*(one(body) for body in bodies))
    return latencies


def run_baseline(env: DemoEnvironment, bodies: list[bytes]) -> list[float]:
    """The same mapped requests, sent one after the other, no store, no checks beyond status."""
    emu = env.settings.emulators
    s4_auth = (emu.s4.users[0].name, emu.s4.users[0].password.get_secret_value())
    erp_auth = (emu.erp.users[0].name, emu.erp.users[0].password.get_secret_value())
    options = S4MappingOptions()
    control = IdocControlSettings()
    base = f"{env.s4_url}{S4_SERVICE}"
    latencies: list[float] = []
    with httpx2.Client(timeout=60.0) as client:
        token = client.get(f"{base}/", headers={"x-csrf-token": "Fetch"}, auth=s4_auth).headers[
            "x-csrf-token"
        ]
        for body in bodies:
            start = time.perf_counter()
            message = parse_customer_message(body)
            assert isinstance(message, ErpAccountDetailsMessage)
            if message.linkederporg.erpsystemtype == "S4HC":
                key = sales_area_key(message, options)
                params = {
                    "$filter": f"Customer eq '{key.customer}' and SalesOrganization eq "
                    f"'{key.sales_organization}' and DistributionChannel eq "
                    f"'{key.distribution_channel}' and Division eq '{key.division}'"
                }
                client.get(f"{base}/A_CustomerSalesArea", params=params, auth=s4_auth)
                response = client.post(
                    f"{base}/A_CustomerSalesArea",
                    json=create_payload(message, options),
                    headers={"x-csrf-token": token, "Accept": "application/json"},
                    auth=s4_auth,
                )
            else:
                idoc = idoc_from_erp_account_details(message, control)
                response = client.post(
                    f"{env.erp_url}/sap/bc/srt/idoc?sap-client=001",
                    content=soap_envelope(idoc),
                    headers={"Content-Type": "text/xml"},
                    auth=erp_auth,
                )
            if response.status_code >= 400:
                raise RuntimeError(response.text)
            latencies.append(time.perf_counter() - start)
    return latencies


def start_environment(tmp: Path, name: str) -> DemoEnvironment:
    settings = Settings()
    settings.emulators.s4_port = 0
    settings.emulators.erp_port = 0
    settings.logging.level = "WARNING"
    env = DemoEnvironment(settings, store_path=tmp / f"{name}.db")
    env.start(service_port=0)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    console = Console()
    bodies = messages(args.messages)
    results: dict[str, tuple[float, list[float]]] = {}
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as folder, Progress(console=console) as progress:
        task = progress.add_task("running", total=2)
        env = start_environment(Path(folder), "baseline")
        try:
            start = time.perf_counter()
            latencies = run_baseline(env, bodies)
            results["baseline (direct, sequential)"] = (time.perf_counter() - start, latencies)
        finally:
            env.stop()
        progress.advance(task)
        env = start_environment(Path(folder), "service")
        try:
            start = time.perf_counter()
            latencies = asyncio.run(run_service(env, bodies, args.concurrency))
            results[f"d365sap (HTTP in, store, {args.concurrency} callers)"] = (
                time.perf_counter() - start,
                latencies,
            )
        finally:
            env.stop()
        progress.advance(task)
    table = Table(title=f"Customer flow, {args.messages} messages against the emulators")
    for column in ("run", "messages/s", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="right")
    for name, (elapsed, latencies) in results.items():
        table.add_row(
            name,
            f"{len(latencies) / elapsed:,.1f}",
            f"{percentile(latencies, 0.5) * 1000:.1f}",
            f"{percentile(latencies, 0.99) * 1000:.1f}",
            f"{statistics.fmean(latencies) * 1000:.1f}",
        )
    console.print(table)
    (base_elapsed, _), (svc_elapsed, _) = results.values()
    console.print(
        f"d365sap throughput is {base_elapsed / svc_elapsed:.2f}x the naive baseline's "
        "(the baseline keeps no record and cannot recover from anything)."
    )


if __name__ == "__main__":
    main()
