"""Running ``d365sap load customers`` as a real process against an end-to-end stack.

The stack (:mod:`support.e2e`, with ``dataverse=True``) runs the emulators and the service in the
test process; the load command runs in its own process, configured by a TOML file that points at
the same message store and the same Dataverse emulator, exactly as an operator would run it next
to a running service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from d365sap.demo_dataverse import ORG_ECC, ORG_S4HC, DataverseDemo
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_SECRET
from support.e2e import Stack


@dataclass(frozen=True)
class SeededCustomer:
    """A customer put into the Dataverse emulator's seed: its rows and where it goes."""

    account: str
    erp_account: str
    detail: str
    target: str  # "s4hc" or "ecc"


def seed_customers(
    dataverse: DataverseDemo, count: int, *, prefix: str, ecc_every: int = 4
) -> list[SeededCustomer]:
    """The packaged seed plus ``count`` new customers (every ``ecc_every``-th one for SAP ERP)."""
    text = resources.files("d365sap.resources").joinpath("dataverse", "seed.json").read_text()
    document: dict[str, Any] = json.loads(text)
    customers = []
    for index in range(count):
        ecc = ecc_every > 0 and index % ecc_every == ecc_every - 1
        org = ORG_ECC if ecc else ORG_S4HC
        ids = SeededCustomer(
            str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), "ecc" if ecc else "s4hc"
        )
        name = f"{prefix.title()} Customer {index:03d}"
        document["accounts"].append(
            {
                "accountid": ids.account,
                "name": name,
                "accountnumber": f"{prefix}-{index:04d}",
                "address1_city": "Dortmund" if ecc else "Palo Alto",
                "address1_postalcode": "44135" if ecc else "94304",
                "address1_country": "DE" if ecc else "US",
            }
        )
        document["sap_erpaccounts"].append(
            {
                "sap_erpaccountid": ids.erp_account,
                "sap_name": name,
                "sap_name1": name,
                "sap_language": "DE" if ecc else "EN",
                "sap_accountid@odata.bind": f"/accounts({ids.account})",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
            }
        )
        document["sap_erpaccountdetails"].append(
            {
                "sap_erpaccountdetailid": ids.detail,
                "sap_name": f"{name} / sales area",
                "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({ids.erp_account})",
                "sap_accountid@odata.bind": f"/accounts({ids.account})",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
                "sap_customergroup": "01",
                "sap_currency": "EUR" if ecc else "USD",
            }
        )
        customers.append(ids)
    dataverse.admin("PUT", "/emulator/seed", json=document)
    return customers


def load_config(stack: Stack, folder: Path) -> Path:
    """A configuration for the load process: the stack's store and Dataverse emulator."""
    settings = stack.env.service_settings
    assert settings is not None
    dataverse = settings.dataverse
    config = folder / "load.toml"
    config.write_text(
        f"""
[store]
url = "{settings.store.url}"
[dataverse]
environment_url = "{dataverse.environment_url}"
authority = "{dataverse.authority}"
tenant = "{dataverse.tenant}"
client_id = "{dataverse.client_id}"
ca_file = "{dataverse.ca_file}"
page_size = 10
[dataverse_flow]
enabled = true
[logging]
level = "WARNING"
""",
        encoding="utf-8",
    )
    return config


def load_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "d365sap", "load", "customers", "--config", str(config), *args]


def load_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", "D365SAP_DATAVERSE__CLIENT_SECRET": DEMO_CLIENT_SECRET}
    env.pop("D365SAP_CONFIG", None)
    return env


def run_load(config: Path, *args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """Run the load to its end; stdout and stderr captured."""
    return subprocess.run(
        load_command(config, *args),
        env=load_env(),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_load(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start the load in the background (to be killed by the test)."""
    return subprocess.Popen(
        load_command(config, *args),
        env=load_env(),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
