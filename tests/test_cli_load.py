"""``d365sap load customers`` refusing to start: the flow not configured, a bad option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200"}
    environment.pop("D365SAP_CONFIG", None)
    environment.pop("D365SAP_DATAVERSE__CLIENT_SECRET", None)
    return subprocess.run(
        [sys.executable, "-m", "d365sap", "load", "customers", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_the_native_flow_it_says_how_to_enable_it(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n', encoding="utf-8")
    result = run("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dataverse_flow" in result.stderr


def test_bad_page_size_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--page-size", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "page-size" in result.stderr
