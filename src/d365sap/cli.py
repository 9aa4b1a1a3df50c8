"""Command line interface (Typer + Rich): service, emulators, demo, configuration, messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from d365sap.cli_load import load_app
from d365sap.cli_messages import messages_app
from d365sap.config import Settings, load_settings
from d365sap.errors import ConfigError
from d365sap.logs import configure_logging

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="d365sap: keeps Dynamics 365 and SAP S/4HANA Cloud / SAP ERP in step.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect and validate the configuration.")
app.add_typer(config_app, name="config")
app.add_typer(messages_app, name="messages")
app.add_typer(load_app, name="load")

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (default: $D365SAP_CONFIG or ./d365sap.toml)",
    ),
]


def settings_or_exit(path: Path | None, *, check_secrets: bool = False) -> Settings:
    """The configuration, or the list of its problems on stderr and exit code 2."""
    try:
        return load_settings(path, check_secrets=check_secrets)
    except ConfigError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from exc


def _print_problems(exc: ConfigError) -> None:
    table = Table(title="Configuration problems", title_style="bold red")
    table.add_column("field", style="bold")
    table.add_column("problem")
    for field, why in exc.problems:
        table.add_row(field, why)
    err_console.print(table)


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate a configuration; names every wrong field and exits 2 if any."""
    settings = settings_or_exit(config, check_secrets=True)
    table = Table(title="Configuration OK", title_style="bold green")
    table.add_column("setting")
    table.add_column("value")
    table.add_row("service", f"http://{settings.service.host}:{settings.service.port}")
    table.add_row("store", settings.store.url)
    table.add_row("S/4HANA Cloud", settings.s4.base_url)
    table.add_row("SAP ERP IDoc", settings.erp.idoc_url)
    table.add_row("inbound users", ", ".join(u.name for u in settings.inbound.users) or "(none)")
    console.print(table)


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration as JSON (secrets masked)."""
    settings = settings_or_exit(config)
    console.print_json(settings.model_dump_json())


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Run the service against the configured SAP endpoints."""
    import uvicorn

    from d365sap.web.app import create_app

    settings = settings_or_exit(config, check_secrets=True)
    configure_logging(settings.logging.level, settings.logging.format)
    uvicorn.run(
        create_app(settings),
        host=settings.service.host,
        port=settings.service.port,
        log_level=settings.logging.level.lower(),
    )


@app.command()
def worker(
    config: ConfigOption = None,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            help="serve only this queue (target system: s4hc, erp, default); repeatable",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="jobs run at once per queue (default: runtime.concurrency)"),
    ] = None,
) -> None:
    """Process queued messages (runtime.kind = "procrastinate") until SIGTERM or Ctrl-C."""
    settings = settings_or_exit(config, check_secrets=True)
    if settings.runtime.kind != "procrastinate":
        err_console.print(
            '[red]d365sap worker needs runtime.kind = "procrastinate" (and a PostgreSQL '
            f"store); this configuration uses {settings.runtime.kind!r}, whose workers run "
            "inside d365sap serve.[/]"
        )
        raise typer.Exit(2)
    configure_logging(settings.logging.level, settings.logging.format)
    # The same event loop as `d365sap serve` (uvicorn picks uvloop where it is installed):
    # measured, the worker spends noticeably less CPU per job on it.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run_worker(settings, queues=queue or None, concurrency=concurrency))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows: uvloop is not installed there
        return None
    return uvloop.new_event_loop


async def _run_worker(
    settings: Settings, *, queues: list[str] | None, concurrency: int | None
) -> None:
    import logging

    from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime
    from d365sap.engine.worker_process import run_worker_process
    from d365sap.service import Service

    # Procrastinate logs every planned retry with a traceback; d365sap logs attempts itself.
    logging.getLogger("procrastinate").setLevel(
        max(logging.WARNING, logging.getLevelName(settings.logging.level))
    )
    async with Service(settings, serve_jobs=False) as service:
        assert isinstance(service.runtime, ProcrastinateRuntime)
        await run_worker_process(service.runtime, queues=queues, concurrency=concurrency)


@app.command()
def emulators(config: ConfigOption = None) -> None:
    """Run the S/4HANA Cloud, SAP ERP and Dataverse emulators until Ctrl-C."""
    from d365sap.demo import wait_forever
    from d365sap.emulators.dataverse.app import create_app as create_dataverse_app
    from d365sap.emulators.erp.app import create_app as create_erp_app
    from d365sap.emulators.s4.app import create_app as create_s4_app
    from d365sap.emulators.tls import ensure_tls
    from d365sap.web.serving import BackgroundServer

    settings = settings_or_exit(config)
    configure_logging(settings.logging.level, settings.logging.format)
    emu = settings.emulators
    dataverse = emu.dataverse
    tls = ensure_tls(dataverse.tls_directory, _certificate_hosts(dataverse.tls_hosts, emu.host))
    dataverse_app = create_dataverse_app(dataverse)
    s4 = BackgroundServer(create_s4_app(emu.s4), host=emu.host, port=emu.s4_port, name="s4")
    erp = BackgroundServer(create_erp_app(emu.erp), host=emu.host, port=emu.erp_port, name="erp")
    dv = BackgroundServer(
        dataverse_app,
        host=emu.host,
        port=emu.dataverse_port,
        name="dataverse",
        ssl_certfile=tls.cert_file,
        ssl_keyfile=tls.key_file,
    )
    with s4, erp, dv:
        issuer = dataverse_app.state.dataverse.issuer
        if dataverse.resource_url is None:
            issuer.resource_url = dv.url
        table = Table(title="Emulators running (Ctrl-C to stop)")
        table.add_column("system")
        table.add_column("URL")
        table.add_row("S/4HANA Cloud OData", f"{s4.url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/")
        table.add_row(
            "S/4HANA Cloud sales orders SOAP",
            f"{s4.url}/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in",
        )
        table.add_row(
            "SAP ERP IDoc SOAP", f"{erp.url}/sap/bc/srt/idoc?sap-client={emu.erp.sap_client}"
        )
        table.add_row("Dataverse Web API", f"{issuer.resource_url}/api/data/v9.2/")
        table.add_row(
            "Entra ID token endpoint",
            f"{dv.url}/{dataverse.entra.tenant_id}/oauth2/v2.0/token",
        )
        table.add_row("Dataverse CA certificate (trust it)", str(tls.ca_file))
        console.print(table)
        wait_forever()


def _certificate_hosts(hosts: list[str], listen: str) -> list[str]:
    """The configured certificate hosts plus the listening address (unless a wildcard)."""
    wanted = list(hosts)
    if listen not in ("0.0.0.0", "::", "") and listen not in wanted:
        wanted.append(listen)
    return wanted


@app.command()
def demo(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="exit after printing the table")] = False,
    store: Annotated[Path, typer.Option(help="SQLite file for the demo's message store")] = Path(
        "var/demo.db"
    ),
) -> None:
    """Start emulators and service on loopback, send the example messages, show the outcome."""
    from d365sap.demo import DemoEnvironment, wait_forever

    settings = settings_or_exit(config)
    configure_logging("WARNING", "console")
    environment = DemoEnvironment(settings, store_path=store)
    try:
        environment.start()
        rows = environment.run_messages()
        table = Table(title="d365sap demo: customer with sales data", show_lines=True)
        for column in ("message", "HTTP", "outcome", "route", "in SAP now", "detail"):
            table.add_column(column, overflow="fold")
        for row in rows:
            style = {"error": "red", "discarded": "yellow"}.get(row.outcome, "green")
            table.add_row(
                row.label,
                str(row.http_status),
                f"[{style}]{row.outcome}[/]",
                row.route,
                row.in_sap,
                row.detail,
            )
        console.print(table)
        native = environment.run_native()
        if native:
            flow = Table(title="d365sap demo: native flow, Dynamics (Dataverse) → SAP")
            for column in ("customer", "account", "SAP system", "SAP number", "status", "detail"):
                flow.add_column(column, overflow="fold")
            for line in native:
                style = "green" if line.status == "synchronized" else "red"
                flow.add_row(
                    line.label,
                    line.account,
                    line.target,
                    line.number,
                    f"[{style}]{line.status}[/]",
                    line.detail,
                )
            console.print(flow)
        urls = Table(title="Running on loopback")
        urls.add_column("what")
        urls.add_column("URL")
        urls.add_row("service (user crm / crm-demo)", environment.service_url)
        urls.add_row("messages API", f"{environment.service_url}/api/messages")
        urls.add_row(
            "S/4HANA Cloud emulator",
            f"{environment.s4_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/",
        )
        urls.add_row("SAP ERP emulator IDocs", f"{environment.erp_url}/emulator/idocs")
        if environment.dataverse is not None:
            urls.add_row(
                "Dataverse emulator Web API", f"{environment.dataverse.url}/api/data/v9.2/"
            )
            urls.add_row(
                "Dataverse webhook into d365sap", f"{environment.service_url}/webhooks/dataverse"
            )
        console.print(urls)
        if not once:
            console.print("Press Ctrl-C to stop.")
            wait_forever()
    finally:
        environment.stop()


def main() -> None:
    """Console-script entry point."""
    app()
