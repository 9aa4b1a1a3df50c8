"""The command line, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("D365SAP_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "d365sap", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_config_check_names_every_wrong_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[service]\nport = -1\n\n[s4]\nbase_url = "nope"\npassword = "leaked"\n'
        '\n[erp.control]\nrcvprt = "LONG"\n',
        encoding="utf-8",
    )
    result = run("config", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    for field in ("service.port", "s4.base_url", "s4.password", "erp.control.rcvprt"):
        assert field in result.stderr
    assert "leaked" not in result.stderr + result.stdout


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    result = run(
        "config",
        "check",
        "--config",
        str(ROOT / "d365sap.example.toml"),
        cwd=tmp_path,
        env={"D365SAP_DYNAMICS_PASSWORD": "x", "D365SAP_S4_PASSWORD": "y"},
    )
    # the example names /run/secrets/erp_password, which does not exist here
    assert result.returncode == 2
    assert "erp.password_file" in result.stderr
    ok = tmp_path / "ok.toml"
    ok.write_text('[s4]\npassword_env = "S4_PW"\n', encoding="utf-8")
    result = run("config", "check", "--config", str(ok), cwd=tmp_path, env={"S4_PW": "secret"})
    assert result.returncode == 0, result.stderr
    assert "Configuration OK" in result.stdout
    assert "secret" not in result.stdout


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    result = run("config", "show", cwd=tmp_path, env={"D365SAP_S4__PASSWORD": "topsecret"})
    assert result.returncode == 0, result.stderr
    assert "topsecret" not in result.stdout
    assert "API_BUSINESS_PARTNER" in result.stdout
