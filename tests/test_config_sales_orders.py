"""``[sales_orders]``: defaults, the example, every wrong field named, secrets never in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from d365sap.config import Settings, load_settings
from d365sap.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_reach_the_emulator() -> None:
    orders = Settings().sales_orders
    assert orders.soap_url.endswith("/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in")
    assert orders.odata.base_url.endswith("/API_SALES_ORDER_SRV")
    assert (orders.order_type, orders.bulk_size, orders.queue) == ("OR", 20, "sales_orders")
    assert orders.units == {"Each": "EA", "Hour": "HUR"}
    assert orders.confirmation.channel == "poll"
    assert Settings().runtime.concurrency["sales_orders"] >= orders.bulk_size
    assert orders.odata_credentials() == ("S4_COMM_USER", None)


def test_the_example_configures_the_flow() -> None:
    orders = load_settings(ROOT / "d365sap.example.toml").sales_orders
    assert orders.user == "COMM_USER_SAP_COM_0288"
    assert orders.password_env == "D365SAP_SALES_ORDERS_PASSWORD"
    assert orders.columns.quote_number == "sap_quotenumber"
    assert orders.write_back.status_values.created == 100_000_001


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[sales_orders]\nsoap_url = "ftp://x"', "sales_orders.soap_url"),
        ('[sales_orders]\norder_type = "TOOLONG"', "sales_orders.order_type"),
        ('[sales_orders]\nunits = { Box = "BOXES" }', "sales_orders.units"),
        ('[sales_orders]\nproducts = { "" = "X" }', "sales_orders.products"),
        ('[sales_orders]\nsales_area = "1710-10-00"', "sales_orders.sales_area"),
        ("[sales_orders]\nbulk_size = 0", "sales_orders.bulk_size"),
        ('[sales_orders]\nqueue = "Sales Orders"', "sales_orders.queue"),
        ('[sales_orders.columns]\nquote_number = "bad name"', "sales_orders.columns.quote_number"),
        (
            "[sales_orders.write_back]\nstatus_values = { sent = 1, created = 1, failed = 2 }",
            "sales_orders.write_back.status_values",
        ),
        ('[sales_orders.confirmation]\nchannel = "mail"', "sales_orders.confirmation.channel"),
        ('[sales_orders]\npassword = "secret"', "sales_orders.password"),
        ('[sales_orders.odata]\npassword = "secret"', "sales_orders.odata.password"),
    ],
)
def test_wrong_fields_are_named(tmp_path: Path, toml: str, field: str) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert any(where.startswith(field) for where, _ in caught.value.problems), caught.value


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(
        '[sales_orders]\npassword_env = "SO_PW"\n[sales_orders.odata]\nuser = "READER"\n'
        'password_file = "/nonexistent/pw"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, check_secrets=True)
    problems = dict(caught.value.problems)
    assert "sales_orders.password_env" in problems
    assert "sales_orders.odata.password_file" in problems
    monkeypatch.setenv("SO_PW", "s3cret")
    monkeypatch.setenv("D365SAP_SALES_ORDERS__BULK_SIZE", "5")
    config.write_text(
        '[sales_orders]\npassword_env = "SO_PW"\n[sales_orders.odata]\nuser = "READER"\n',
        encoding="utf-8",
    )
    orders = load_settings(config, check_secrets=True).sales_orders
    assert (orders.secret(), orders.bulk_size) == ("s3cret", 5)
    assert orders.odata_credentials() == ("READER", None)
