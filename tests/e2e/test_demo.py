"""``d365sap demo --once`` as a user runs it: a real process, real sockets, a table at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_once_prints_what_happened_in_each_system(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COLUMNS": "250",
        "D365SAP_SERVICE__PORT": "0",
        "D365SAP_EMULATORS__S4_PORT": "0",
        "D365SAP_EMULATORS__ERP_PORT": "0",
        "D365SAP_EMULATORS__DATAVERSE_PORT": "0",
    }
    env.pop("D365SAP_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "d365sap", "demo", "--once", "--store", str(tmp_path / "demo.db")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("created", "updated", "idoc_sent", "discarded", "error", "status 53"):
        assert expected in out, out
    assert "SalesGroup 171" in out  # the changed message reached S/4
    assert "sap_vkorg" in out  # the invalid message names its field
    # The native flow: two customers created in Dynamics, numbered by SAP, written back.
    assert "native flow" in out
    assert out.count("synchronized") == 2, out
    assert "Harbour Pumps Inc." in out and "Hafen Armaturen GmbH" in out
    assert (tmp_path / "demo.db").exists()
