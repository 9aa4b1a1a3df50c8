"""Settings: TOML, environment overrides, secrets kept out of the file, every bad field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from d365sap.config import load_settings
from d365sap.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d365sap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("D365SAP_CONFIG", raising=False)
    settings = load_settings()
    assert settings.erp.control.idoctyp == "DEBMAS07"
    assert settings.erp.control.sndprn == "SUB_CRM360"
    assert settings.inbound.max_body_bytes == 40 * 1024 * 1024


def test_toml_values_and_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[s4]
base_url = "https://my.s4.example/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
customer_number_padding = 10

[erp.control]
rcvprn = "Q01CLNT100"
""",
    )
    monkeypatch.setenv("D365SAP_S4__TIMEOUT_SECONDS", "7.5")
    monkeypatch.setenv("D365SAP_ERP__CONTROL__SNDPRN", "SUB_D365")
    settings = load_settings(path)
    assert settings.s4.base_url == "https://my.s4.example/sap/opu/odata/sap/API_BUSINESS_PARTNER"
    assert settings.s4.customer_number_padding == 10
    assert settings.s4.timeout_seconds == 7.5
    assert settings.erp.control.rcvprn == "Q01CLNT100"
    assert settings.erp.control.sndprn == "SUB_D365"


def test_config_file_from_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, "[service]\nport = 9999\n")
    monkeypatch.setenv("D365SAP_CONFIG", str(path))
    assert load_settings().service.port == 9999


def test_every_wrong_field_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[service]
port = "eighty"

[s4]
base_url = "ftp://nope"
unknown_setting = 1

[store]
url = "mysql://x"

[erp.control]
sndprt = "TOOLONG"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    fields = {field for field, _ in caught.value.problems}
    assert {
        "service.port",
        "s4.base_url",
        "s4.unknown_setting",
        "store.url",
        "erp.control.sndprt",
    } <= fields


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[s4]\npassword = "plain"\n\n[[inbound.users]]\nname = "crm"\npassword = "x"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    fields = {field for field, _ in caught.value.problems}
    assert "s4.password" in fields
    assert "inbound.users.0.password" in fields
    assert "plain" not in str(caught.value)


def test_secrets_from_env_and_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "erp.secret"
    secret_file.write_text("from-file\n", encoding="utf-8")
    path = write(
        tmp_path,
        f"""
[s4]
password_env = "MY_S4_PASSWORD"

[erp]
password_file = "{secret_file}"

[[inbound.users]]
name = "crm"
password_env = "CRM_PASSWORD"
""",
    )
    monkeypatch.setenv("MY_S4_PASSWORD", "from-env")
    monkeypatch.setenv("CRM_PASSWORD", "crm-secret")
    settings = load_settings(path, check_secrets=True)
    assert settings.s4.secret() == "from-env"
    assert settings.erp.secret() == "from-file"
    assert settings.inbound.users[0].secret() == "crm-secret"
    dumped = settings.model_dump_json()
    assert "from-env" not in dumped and "from-file" not in dumped


def test_direct_secret_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("D365SAP_S4__PASSWORD", "env-direct")
    settings = load_settings(write(tmp_path, ""))
    assert settings.s4.secret() == "env-direct"
    assert "env-direct" not in repr(settings)


def test_unresolvable_secrets_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(
        tmp_path,
        '[s4]\npassword_env = "NOT_SET_ANYWHERE"\n\n[erp]\npassword_file = "/nonexistent/secret"\n',
    )
    load_settings(path)  # fine until secrets are checked
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_secrets=True)
    fields = {field for field, _ in caught.value.problems}
    assert fields == {"s4.password_env", "erp.password_file"}


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[s4\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
