"""The shipped example configuration is valid."""

from __future__ import annotations

from pathlib import Path

from d365sap.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads() -> None:
    settings = load_settings(ROOT / "d365sap.example.toml")
    assert settings.erp.control.rcvprn == "C11CLNT001"
    assert settings.inbound.users[0].name == "dynamics"
