"""Settings of the Dataverse triggers: the webhook endpoint and the scheduled delta poll.

Both triggers feed the native customer flow (``flows/dataverse_messages.py``): the webhook
endpoint ``POST /webhooks/dataverse`` hears about a change the moment Dataverse posts it, the
delta poll reads change tracking at an interval and catches whatever a webhook missed. They are
mounted as ``[dataverse_triggers]`` in :mod:`d365sap.config`.

The webhook key is a secret: it never comes from the TOML file itself, only from the environment
(``D365SAP_DATAVERSE_TRIGGERS__WEBHOOK_KEY``), a named variable (``webhook_key_env``) or a file
(``webhook_key_file``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PollTable = Literal["sap_erpaccountdetail", "sap_erpaccount", "account"]

DEFAULT_POLL_TABLES: tuple[PollTable, ...] = ("sap_erpaccountdetail", "sap_erpaccount", "account")

ENTITY_SETS: dict[str, str] = {
    "account": "accounts",
    "sap_erpaccount": "sap_erpaccounts",
    "sap_erpaccountdetail": "sap_erpaccountdetails",
}
"""Entity set of each table a trigger reads."""


class DataverseTriggerSettings(BaseModel):
    """``[dataverse_triggers]``: how Dataverse changes reach the native customer flow."""

    model_config = ConfigDict(extra="forbid")

    webhook_key: SecretStr | None = Field(default=None, description="only from the environment")
    webhook_key_env: str | None = Field(default=None, description="variable holding the key")
    webhook_key_file: Path | None = Field(default=None, description="file holding the key")
    webhook_header: str = Field(
        default="x-d365sap-webhook-key",
        pattern=r"^[A-Za-z0-9-]{1,100}$",
        description="header of an HttpHeader registration; x-functions-key and ?code= "
        "(WebhookKey) are accepted too",
    )
    webhook_max_body_kb: int = Field(
        default=1024,
        ge=16,
        le=65536,
        description="largest context accepted (Dataverse strips contexts over 256 KB itself)",
    )
    poll: bool = Field(default=False, description="run the delta poll inside `d365sap serve`")
    poll_interval_seconds: float = Field(default=60.0, ge=1, le=86400)
    poll_tables: list[PollTable] = Field(
        default_factory=lambda: list(DEFAULT_POLL_TABLES),
        min_length=1,
        description="tables whose change tracking the poll reads",
    )
    poll_initial: Literal["baseline", "submit"] = Field(
        default="baseline",
        description="first pass over a table: baseline records the rows' versions and submits "
        "nothing (`d365sap load customers` does initial loads); submit hands every row on",
    )

    @field_validator("poll_tables")
    @classmethod
    def _unique(cls, value: list[PollTable]) -> list[PollTable]:
        if len(set(value)) != len(value):
            raise ValueError("names a table twice")
        return value

    @property
    def webhook_max_body_bytes(self) -> int:
        return self.webhook_max_body_kb * 1024

    def key(self) -> str | None:
        """The webhook key, if one is configured (an empty one counts as none)."""
        if self.webhook_key is not None:
            value: str | None = self.webhook_key.get_secret_value()
        elif self.webhook_key_env:
            value = os.environ.get(self.webhook_key_env)
        elif self.webhook_key_file:
            value = self.webhook_key_file.read_text(encoding="utf-8").rstrip("\r\n")
        else:
            value = None
        return value or None

    def secret_problems(self) -> list[tuple[str, str]]:
        """A named key source that cannot be read."""
        where = "dataverse_triggers"
        if self.webhook_key_env and self.webhook_key_env not in os.environ:
            return [
                (
                    f"{where}.webhook_key_env",
                    f"environment variable {self.webhook_key_env} is not set",
                )
            ]
        if self.webhook_key_file and not self.webhook_key_file.is_file():
            return [(f"{where}.webhook_key_file", f"file {self.webhook_key_file} does not exist")]
        return []
