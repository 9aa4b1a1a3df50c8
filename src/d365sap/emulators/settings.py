"""Settings of the emulators, kept here so the emulators need nothing from the service side."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.dataverse.identity import EntraSettings
from d365sap.emulators.dataverse.protection import ServiceProtectionSettings
from d365sap.emulators.dataverse.webhooks import WebhookSettings
from d365sap.emulators.erp.numbering import AccountGroup, default_account_groups
from d365sap.emulators.faults import ERP_KINDS, S4_KINDS, FaultKind, FaultSettings

DATAVERSE_KINDS = frozenset(FaultKind) - {FaultKind.LOCK, FaultKind.CSRF_EXPIRY}
"""What the Dataverse emulator can inject (no CSRF tokens, no ERP locks)."""


def _supported_only(
    faults: FaultSettings, supported: frozenset[FaultKind], system: str
) -> FaultSettings:
    """Refuse a fault the emulator cannot inject, rather than silently never injecting it."""
    problems = faults.unsupported(supported)
    if problems:
        field, _ = problems[0]
        raise ValueError(f"{field} is not available in the {system} emulator")
    return faults


class EmulatorUser(BaseModel):
    """A user the emulated system accepts with HTTP basic authentication.

    Emulator passwords are demo credentials of a fake system, so they may sit in the config file.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=12)
    password: SecretStr


class SalesOrderConfirmationSettings(BaseModel):
    """Where S/4 posts a ``SalesOrderBulkConfirmation`` per processed order (off without url)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="receiver of the confirmations"
    )
    user: str | None = Field(default=None, min_length=1, description="basic auth user")
    password: SecretStr | None = Field(default=None, description="basic auth password")
    soap_version: Literal["1.1", "1.2"] = "1.1"
    timeout_seconds: float = Field(default=10.0, gt=0)
    retries: int = Field(default=5, ge=0, le=100, description="further attempts after a failure")
    backoff_seconds: float = Field(default=1.0, ge=0, description="first wait, doubled each time")
    max_backoff_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _user_with_password(self) -> SalesOrderConfirmationSettings:
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password are set together")
        return self


class SalesOrderBulkSettings(BaseModel):
    """SalesOrderBulkRequest_In (SOAP, asynchronous) and the processing of its orders."""

    model_config = ConfigDict(extra="forbid")

    users: list[EmulatorUser] | None = Field(
        default=None,
        description="communication users of the arrangement (SAP_COM_0288); the S/4 users "
        "when not set",
    )
    processing_delay_seconds: float = Field(
        default=0.0, ge=0, le=3600, description="wait between receipt and processing"
    )
    order_types: list[str] = Field(
        default_factory=lambda: ["OR"], min_length=1, description="sales document types known"
    )
    number_range_from: int = Field(default=1, ge=1, le=9999999999)
    number_range_to: int = Field(default=9999999999, ge=1, le=9999999999)
    message_log_size: int = Field(
        default=500, ge=1, description="messages kept for /emulator/sales-orders/messages"
    )
    confirmation: SalesOrderConfirmationSettings = Field(
        default_factory=SalesOrderConfirmationSettings
    )


class S4EmulatorSettings(BaseModel):
    """S/4HANA Cloud emulator (OData v2 APIs and the SOAP service SalesOrderBulkRequest_In)."""

    model_config = ConfigDict(extra="forbid")

    users: list[EmulatorUser] = Field(
        default_factory=lambda: [EmulatorUser(name="S4_COMM_USER", password=SecretStr("Welcome1!"))]
    )
    seed_file: Path | None = Field(
        default=None, description="JSON seed data; the packaged demo seed when not set"
    )
    page_size: int = Field(default=1000, ge=1, description="server-side page size (__next)")
    csrf_token_ttl_seconds: float = Field(default=1800.0, gt=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    sap_system_id: str = Field(
        default="S4H", pattern=r"^[A-Z][A-Z0-9]{2}$", description="SID in realm and session cookie"
    )
    sap_client: str = Field(default="100", pattern=r"^\d{3}$")
    bp_number_range_from: int = Field(
        default=1000000, ge=1, le=9999999999, description="internal business partner numbers"
    )
    bp_number_range_to: int = Field(default=1999999, ge=1, le=9999999999)
    journal_size: int = Field(
        default=500, ge=1, description="modifying requests kept for GET /emulator/requests"
    )
    sales_orders: SalesOrderBulkSettings = Field(default_factory=SalesOrderBulkSettings)
    faults: FaultSettings = Field(
        default_factory=FaultSettings,
        description="injected faults at start-up; changed at run time via /emulator/faults",
    )

    @field_validator("faults")
    @classmethod
    def _s4_faults(cls, value: FaultSettings) -> FaultSettings:
        return _supported_only(value, S4_KINDS, "S/4HANA Cloud")


class ErpEmulatorSettings(BaseModel):
    """SAP ERP (ECC) emulator: IDoc-XML inbound and a customer master."""

    model_config = ConfigDict(extra="forbid")

    users: list[EmulatorUser] = Field(
        default_factory=lambda: [EmulatorUser(name="IDOC_USER", password=SecretStr("Welcome1!"))]
    )
    sap_client: str = Field(default="001", pattern=r"^\d{3}$")
    accepted_message_types: list[str] = Field(
        default_factory=lambda: ["ZZ_DEBMAS_WILO360", "DEBMAS"],
        description="MESTYP values the partner profile accepts",
    )
    accepted_extensions: list[str] = Field(
        default_factory=lambda: ["ZZ_DEBMAS_WILO360", "ZZ_DEBMAS", ""],
        description="CIMTYP values the partner profile accepts ('' = none)",
    )
    seed_file: Path | None = Field(
        default=None, description="JSON customer master seed; the packaged demo seed when not set"
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    account_groups: list[AccountGroup] = Field(
        default_factory=default_account_groups,
        description="customer account groups (KTOKD) a DEBMAS may create customers in",
    )
    faults: FaultSettings = Field(
        default_factory=FaultSettings,
        description="injected faults at start-up; changed at run time via /emulator/faults",
    )

    @field_validator("faults")
    @classmethod
    def _erp_faults(cls, value: FaultSettings) -> FaultSettings:
        return _supported_only(value, ERP_KINDS, "SAP ERP")

    @field_validator("account_groups")
    @classmethod
    def _unique_groups(cls, value: list[AccountGroup]) -> list[AccountGroup]:
        names = [group.name for group in value]
        if len(names) != len(set(names)):
            raise ValueError("account group names must be unique")
        return value


class DataverseEmulatorSettings(BaseModel):
    """Dataverse (Dynamics 365) emulator: Web API v9.2 over TLS with an Entra ID token endpoint."""

    model_config = ConfigDict(extra="forbid")

    entra: EntraSettings = Field(
        default_factory=EntraSettings, description="tenant, applications and token lifetime"
    )
    resource_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+$",
        description="environment URL (token audience); default https://<host>:<dataverse_port>",
    )
    tls_directory: Path = Field(
        default=Path("var/dataverse-tls"),
        description="where the emulator CA and server certificate are kept (clients trust ca.pem)",
    )
    tls_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost"],
        min_length=1,
        description="names and addresses the server certificate covers",
    )
    seed_file: Path | None = Field(
        default=None, description="JSON seed data; the packaged demo seed when not set"
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    enforce_business_required: bool = Field(
        default=False,
        description="also refuse writes that leave ApplicationRequired columns empty "
        "(Dataverse itself only enforces SystemRequired; forms enforce the rest)",
    )
    base_currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO code of the organisation's base currency (rows with money values)",
    )
    protection: ServiceProtectionSettings = Field(default_factory=ServiceProtectionSettings)
    change_tracking: ChangeTrackingSettings = Field(default_factory=ChangeTrackingSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    faults: FaultSettings = Field(
        default_factory=FaultSettings,
        description="injected faults at start-up; changed at run time via /emulator/faults",
    )

    @field_validator("faults")
    @classmethod
    def _dataverse_faults(cls, value: FaultSettings) -> FaultSettings:
        return _supported_only(value, DATAVERSE_KINDS, "Dataverse")


class EmulatorsSettings(BaseModel):
    """Where the emulators listen when run by ``d365sap emulators`` or ``d365sap demo``."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    s4_port: int = Field(default=18081, ge=0, le=65535)
    erp_port: int = Field(default=18082, ge=0, le=65535)
    dataverse_port: int = Field(default=18083, ge=0, le=65535)
    s4: S4EmulatorSettings = Field(default_factory=S4EmulatorSettings)
    erp: ErpEmulatorSettings = Field(default_factory=ErpEmulatorSettings)
    dataverse: DataverseEmulatorSettings = Field(default_factory=DataverseEmulatorSettings)
