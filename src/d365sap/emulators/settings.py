"""Settings of the emulators, kept here so the emulators need nothing from the service side."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from d365sap.emulators.faults import ERP_KINDS, S4_KINDS, FaultKind, FaultSettings


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


class S4EmulatorSettings(BaseModel):
    """S/4HANA Cloud emulator (API_BUSINESS_PARTNER over OData v2)."""

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
    faults: FaultSettings = Field(
        default_factory=FaultSettings,
        description="injected faults at start-up; changed at run time via /emulator/faults",
    )

    @field_validator("faults")
    @classmethod
    def _erp_faults(cls, value: FaultSettings) -> FaultSettings:
        return _supported_only(value, ERP_KINDS, "SAP ERP")


class EmulatorsSettings(BaseModel):
    """Where the emulators listen when run by ``d365sap emulators`` or ``d365sap demo``."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    s4_port: int = Field(default=18081, ge=0, le=65535)
    erp_port: int = Field(default=18082, ge=0, le=65535)
    s4: S4EmulatorSettings = Field(default_factory=S4EmulatorSettings)
    erp: ErpEmulatorSettings = Field(default_factory=ErpEmulatorSettings)
