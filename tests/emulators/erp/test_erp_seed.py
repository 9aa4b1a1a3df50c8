"""Seed files and partner-profile settings: what the emulator starts with and what it accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from d365sap.emulators.erp.app import create_app
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.errors import ConfigError
from d365sap.web.serving import serving
from emulators.erp.erp_support import (
    ACCOUNTS,
    AUTH,
    golden,
    numbers,
    post_soap,
    set_text,
    soap_fault,
    xml,
)

SEED: dict[str, Any] = {
    "customers": [
        {
            "KUNNR": "42",
            "KNA1": {"NAME1": "Seeded Test Customer", "LAND1": "CH", "ORT01": "Basel"},
            "Z1ZAKNA1": {"ZZ_ID": "seed-id"},
            "KNVV": [{"VKORG": "3000", "VTWEG": "10", "SPART": "01", "WAERS": "CHF"}],
        }
    ]
}


def _write(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "erp-seed.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_seed_file_and_partner_profile_from_settings(tmp_path: Path) -> None:
    settings = ErpEmulatorSettings(
        seed_file=_write(tmp_path, SEED),
        accepted_message_types=["DEBMAS"],
        accepted_extensions=[""],
    )
    with (
        serving(create_app(settings), name="erp-seeded") as server,
        httpx2.Client(base_url=server.url, auth=AUTH) as client,
    ):
        customer = client.get("/emulator/customers/0000000042").json()
        assert customer["kunnr"] == "0000000042"
        assert customer["kna1"]["NAME1"] == "Seeded Test Customer"
        assert customer["kna1"]["NAME2"] == ""
        assert customer["z1zakna1"] == {"ZZ_ID": "seed-id", "ZZ_BAULEISTER_ABLAUFDATUM": ""}
        [area] = customer["sales_areas"]
        assert (area["vkorg"], area["knvv"]["WAERS"], area["deletion_flag"]) == (
            "3000",
            "CHF",
            False,
        )
        assert client.get("/emulator/customers/100123").status_code == 404

        # the golden document's message type and extension are not in this partner profile
        fault = soap_fault(post_soap(client, xml(golden(ACCOUNTS))))
        assert "EDI_DC40-MESTYP: message type 'ZZ_DEBMAS_WILO360' is not maintained" in fault.text
        assert "EDI_DC40-CIMTYP: extension 'ZZ_DEBMAS_WILO360' is not maintained" in fault.text

        document = golden(ACCOUNTS)
        document.tag = "DEBMAS07"
        set_text(document, "IDOC/EDI_DC40/MESTYP", "DEBMAS")
        set_text(document, "IDOC/EDI_DC40/CIMTYP", "")
        set_text(document, "IDOC/E1KNA1M/KUNNR", "42")
        [docnum] = numbers(post_soap(client, xml(document)))
        assert client.get(f"/emulator/idocs/{docnum}").json()["status"] == "53"
        assert client.get("/emulator/customers/42").json()["kna1"]["ORT01"] == "Dortmund"

        # the XSD's own root name stays accepted, the extension's does not
        document.tag = "ZZ_DEBMAS_WILO360"
        fault = soap_fault(post_soap(client, xml(document)))
        assert fault.string.startswith("ZZ_DEBMAS_WILO360: not a DEBMAS07 IDoc document")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"customers": [{"KUNNR": "1", "KNA1": {"NAME9": "x"}}]}, "KNA1.NAME9"),
        ({"customers": [{"KUNNR": "1", "KNA1": {"LAND1": "DEU1"}}]}, "longer than 3"),
        ({"customers": [{"KUNNR": "1", "KNVV": [{"VKORG": "1000"}]}]}, "sales area key"),
        ({"customers": [{"KUNNR": "1"}, {"KUNNR": "0000000001"}]}, "appears twice"),
        ({"customers": [{"KUNNR": "1", "EXTRA": {}}]}, "EXTRA"),
        ({"clients": []}, "customers"),
    ],
)
def test_invalid_seed_is_a_config_error(
    tmp_path: Path, content: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        create_app(ErpEmulatorSettings(seed_file=_write(tmp_path, content)))


def test_unreadable_seed_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the ERP seed file"):
        create_app(ErpEmulatorSettings(seed_file=tmp_path / "missing.json"))


def test_packaged_seed(erp: httpx2.Client) -> None:
    customer = erp.get("/emulator/customers/100123").json()
    kna1 = customer["kna1"]
    assert (kna1["NAME1"], kna1["ORT01"], kna1["LAND1"]) == (
        "Muster Pumpentechnik GmbH",
        "Dortmund",
        "DE",
    )
    assert [(a["vkorg"], a["vtweg"], a["spart"]) for a in customer["sales_areas"]] == [
        ("1000", "10", "00")
    ]
    others = [c["kunnr_external"] for c in erp.get("/emulator/customers").json()["customers"]]
    assert "100123" in others and 3 <= len(others) <= 4
