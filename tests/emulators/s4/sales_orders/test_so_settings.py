"""``[emulators.s4.sales_orders]`` from the configuration file, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from d365sap.config import load_settings
from d365sap.errors import ConfigError

GOOD = """
[emulators.s4.sales_orders]
processing_delay_seconds = 0.25
order_types = ["OR", "ZOR"]
users = [{ name = "SO_INBOUND", password = "Secret-1" }]

[emulators.s4.sales_orders.confirmation]
url = "http://127.0.0.1:18080/confirmations"
user = "CONFIRM"
password = "pw"
soap_version = "1.2"
retries = 2
"""


def test_sales_order_settings_are_read_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(GOOD, encoding="utf-8")
    settings = load_settings(config).emulators.s4.sales_orders
    assert settings.processing_delay_seconds == 0.25
    assert settings.order_types == ["OR", "ZOR"]
    assert settings.users is not None and settings.users[0].name == "SO_INBOUND"
    confirmation = settings.confirmation
    assert confirmation.url == "http://127.0.0.1:18080/confirmations"
    assert confirmation.password is not None
    assert confirmation.password.get_secret_value() == "pw"
    assert (confirmation.soap_version, confirmation.retries) == ("1.2", 2)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[emulators.s4.sales_orders.confirmation]\nuser = 'x'\n", "confirmation"),
        ("[emulators.s4.sales_orders.confirmation]\nurl = 'ftp://x'\n", "confirmation.url"),
        ("[emulators.s4.sales_orders.confirmation]\nsoap_version = '2.0'\n", "soap_version"),
        ("[emulators.s4.sales_orders]\nprocessing_delay_seconds = -1\n", "processing_delay"),
        ("[emulators.s4.sales_orders]\norder_types = []\n", "order_types"),
        ("[emulators.s4.sales_orders]\ncolour = 'red'\n", "sales_orders.colour"),
    ],
)
def test_bad_sales_order_settings_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as failure:
        load_settings(config)
    assert field in str(failure.value), str(failure.value)
