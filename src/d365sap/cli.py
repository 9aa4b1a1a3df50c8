"""Command line interface (Typer + Rich)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="d365sap: Dynamics 365 <-> SAP integration service.")


@app.callback()
def _root() -> None:
    """d365sap: Dynamics 365 <-> SAP integration service."""


def main() -> None:
    """Console-script entry point."""
    app()
