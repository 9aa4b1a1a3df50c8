"""``[dataverse_triggers]``: the webhook key stays out of the file; poll settings are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from d365sap.config import load_settings
from d365sap.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d365sap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_webhook_key_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[dataverse_triggers]\nwebhook_key = "in-the-file"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "dataverse_triggers.webhook_key" in {field for field, _ in caught.value.problems}
    assert "in-the-file" not in str(caught.value)


def test_key_from_a_variable_a_file_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOOK_KEY", "from-variable")
    named = load_settings(write(tmp_path, '[dataverse_triggers]\nwebhook_key_env = "HOOK_KEY"\n'))
    assert named.dataverse_triggers.key() == "from-variable"
    secret = tmp_path / "key.txt"
    secret.write_text("from-file\n", encoding="utf-8")
    filed = load_settings(write(tmp_path, f'[dataverse_triggers]\nwebhook_key_file = "{secret}"\n'))
    assert filed.dataverse_triggers.key() == "from-file"
    monkeypatch.setenv("D365SAP_DATAVERSE_TRIGGERS__WEBHOOK_KEY", "k3y-Direct-9")
    direct = load_settings(write(tmp_path, ""))
    assert direct.dataverse_triggers.key() == "k3y-Direct-9"
    assert "k3y-Direct-9" not in direct.model_dump_json()


def test_unreadable_key_sources_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[dataverse_triggers]\nwebhook_key_env = "NO_SUCH_VARIABLE_FOR_D365SAP"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_secrets=True)
    assert [f for f, _ in caught.value.problems] == ["dataverse_triggers.webhook_key_env"]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("poll_interval_seconds = 0", "dataverse_triggers.poll_interval_seconds"),
        ('poll_tables = ["contact"]', "dataverse_triggers.poll_tables.0"),
        ('poll_tables = ["account", "account"]', "dataverse_triggers.poll_tables"),
        ('poll_initial = "everything"', "dataverse_triggers.poll_initial"),
        ('webhook_header = "bad header"', "dataverse_triggers.webhook_header"),
        ("webhook_max_body_kb = 1", "dataverse_triggers.webhook_max_body_kb"),
    ],
)
def test_bad_trigger_settings_name_the_field(tmp_path: Path, line: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"[dataverse_triggers]\n{line}\n"))
    assert field in {f for f, _ in caught.value.problems}
