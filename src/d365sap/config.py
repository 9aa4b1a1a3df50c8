"""Settings: a TOML file, overridden by environment variables, with secrets kept out of the file.

Lookup order (later wins): built-in defaults, the TOML file (``--config``, ``D365SAP_CONFIG`` or
``./d365sap.toml``), then environment variables ``D365SAP_<SECTION>__<FIELD>`` (for example
``D365SAP_S4__BASE_URL``). Secrets (passwords, client secrets, key files) are never read from the
TOML file itself: the file names where they live (``password_env`` / ``password_file``), or the
environment provides them directly (``D365SAP_S4__PASSWORD``). Secret values are ``SecretStr`` and
never printed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from d365sap.config_base import SecretRef
from d365sap.config_base import Section as _Section
from d365sap.config_create import ErpCreateSettings, S4CreateSettings
from d365sap.config_dataverse_flow import DataverseFlowSettings
from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.config_triggers import DataverseTriggerSettings
from d365sap.emulators.settings import EmulatorsSettings
from d365sap.errors import ConfigError

CONFIG_ENV = "D365SAP_CONFIG"
DEFAULT_CONFIG_FILE = "d365sap.toml"
SECRET_KEYS = frozenset({"password", "client_secret", "secret", "private_key", "webhook_key"})


class InboundUser(SecretRef):
    """A Dynamics-side caller allowed to push messages (HTTP basic authentication)."""

    name: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=lambda: ["ESBMessaging.send"])


class InboundSettings(_Section):
    """The package-compatible inbound endpoints (SEED-SPEC §1.1, §5.1)."""

    users: list[InboundUser] = Field(default_factory=list)
    required_role: str = "ESBMessaging.send"
    operator_role: str = Field(
        default="d365sap.operator",
        min_length=1,
        description="role a user needs for the operator actions of the message API",
    )
    max_body_mb: float = Field(default=40.0, gt=0, le=1024)
    discard_status: Literal[202, 422] = Field(
        default=202, description="202 keeps the package's answer; 422 tells the caller not to retry"
    )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class ServiceSettings(_Section):
    """Where ``d365sap serve`` listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=18080, ge=0, le=65535)


class StoreSettings(_Section):
    """The message store (SQLAlchemy URL; a SQLite file by default)."""

    url: str = "sqlite:///var/d365sap.db"
    log_payloads: bool = Field(
        default=False, description="keep payload copies before/after mapping"
    )
    mask_pii: bool = True

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return value


class S4Settings(SecretRef):
    """S/4HANA Cloud API_BUSINESS_PARTNER (communication scenario SAP_COM_0008)."""

    base_url: str = "http://127.0.0.1:18081/sap/opu/odata/sap/API_BUSINESS_PARTNER"
    user: str = "S4_COMM_USER"
    timeout_seconds: float = Field(default=60.0, gt=0)
    verify_tls: bool = True
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    customer_number_padding: int = Field(
        default=0, ge=0, le=10, description="left-pad numeric customer numbers with zeros (D9)"
    )
    send_tax_row: Literal["when_complete", "always"] = Field(
        default="when_complete",
        description="create the to_SalesAreaTax row only when country and category are set (D10)",
    )
    omit_blank_properties: bool = Field(
        default=True, description="do not overwrite S/4 defaults with empty strings (D10)"
    )
    create: S4CreateSettings = Field(
        default_factory=S4CreateSettings, description="creating new customers (G1)"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class IdocControlSettings(_Section):
    """EDI_DC40 control record and the XML root of the DEBMAS IDoc (D11, D12).

    The defaults are the package's values, kept as a documented example.
    """

    root_element: str = Field(default="ZZ_DEBMAS", pattern=r"^[A-Z][A-Z0-9_]{0,29}$")
    idoctyp: str = Field(default="DEBMAS07", max_length=30)
    cimtyp: str = Field(default="ZZ_DEBMAS_WILO360", max_length=30)
    mestyp: str = Field(default="ZZ_DEBMAS_WILO360", max_length=30)
    sndpor: str = Field(default="CPI_IDOC", max_length=10)
    sndprt: str = Field(default="LS", max_length=2)
    sndprn: str = Field(default="SUB_CRM360", max_length=10)
    rcvpor: str = Field(default="SAPC11", max_length=10)
    rcvprt: str = Field(default="LS", max_length=2)
    rcvprn: str = Field(default="C11CLNT001", max_length=10)
    msgfn: str = Field(
        default="005", max_length=3, description="ALE function code of E1KNA1M/E1KNVVM (D12)"
    )


class ErpSettings(SecretRef):
    """SAP ERP IDoc-XML SOAP inbound (``/sap/bc/srt/idoc``)."""

    idoc_url: str = "http://127.0.0.1:18082/sap/bc/srt/idoc?sap-client=001"
    user: str = "IDOC_USER"
    content_type: Literal["application/x-sap.idoc", "text/xml"] = Field(
        default="application/x-sap.idoc",
        description="application/x-sap.idoc sends a SapMessageId for exactly-once (D6)",
    )
    timeout_seconds: float = Field(default=60.0, gt=0)
    verify_tls: bool = True
    control: IdocControlSettings = Field(default_factory=IdocControlSettings)
    status_url: str = Field(
        default="http://127.0.0.1:18082/sap/bc/srt/rfc/sap/zidoc_read_completely/001/"
        "zidoc_read_completely/binding",
        description="SOAP service of IDOC_READ_COMPLETELY: IDoc status, e.g. a created KUNNR",
    )
    create: ErpCreateSettings = Field(
        default_factory=ErpCreateSettings, description="creating new customers (G2)"
    )

    @field_validator("idoc_url", "status_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class RetrySettings(_Section):
    """Back-off of transient failures (timeouts, 5xx, 429, locks)."""

    max_attempts: int = Field(default=8, ge=1, le=100, description="including the first attempt")
    base_delay_seconds: float = Field(default=1.0, gt=0)
    max_delay_seconds: float = Field(default=300.0, gt=0)
    jitter: float = Field(default=0.5, ge=0, le=1, description="spread of each delay, 0..1")


class RuntimeSettings(_Section):
    """How accepted messages are queued and processed."""

    kind: Literal["embedded", "procrastinate"] = Field(
        default="embedded",
        description="embedded: workers in the service (SQLite or PostgreSQL); "
        "procrastinate: `d365sap worker` processes on PostgreSQL",
    )
    sync_wait_seconds: float = Field(
        default=30.0, ge=0, description="how long the legacy endpoints wait for the outcome"
    )
    respond_async: bool = Field(
        default=False, description="answer 202 at once (also per request: Prefer: respond-async)"
    )
    concurrency: dict[str, int] = Field(
        default_factory=lambda: {"s4hc": 8, "erp": 4, "sales_orders": 40, "default": 4},
        description="messages processed at once per target system",
    )
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often idle workers look for due jobs (retries)"
    )
    lease_seconds: float = Field(default=60.0, ge=1)
    workers_in_service: bool = Field(
        default=False,
        description="procrastinate: also run workers inside `d365sap serve` "
        "(normally only `d365sap worker` processes do)",
    )
    heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="procrastinate: how often a worker reports it is alive"
    )
    stalled_seconds: float = Field(
        default=30.0,
        gt=0,
        description="procrastinate: a worker silent this long is dead; its jobs run again",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="procrastinate: how long a stopping worker lets running jobs finish",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for queue, limit in value.items():
            if limit < 1:
                raise ValueError(f"concurrency of {queue!r} must be at least 1")
        return value

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> RuntimeSettings:
        # A live worker must never look dead: allow for two missed heartbeats.
        if self.stalled_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("stalled_seconds must be at least twice heartbeat_seconds")
        return self


class DataverseThrottleSettings(_Section):
    """The deployment-wide Dataverse throttle, shared by every process through the store."""

    max_requests: int = Field(
        default=5000,
        ge=1,
        le=1_000_000,
        description="requests per window for the whole deployment (Dataverse: 6000 per user)",
    )
    window_seconds: float = Field(default=300.0, gt=0, description="sliding window length")
    lease_size: int = Field(
        default=20, ge=1, le=1000, description="requests a process takes per store write"
    )
    lease_seconds: float = Field(default=10.0, gt=0, description="an unspent lease lapses after")
    pause_check_seconds: float = Field(
        default=1.0, ge=0, description="how stale a process's view of a 429 pause may be"
    )
    max_wait_seconds: float = Field(
        default=60.0, ge=0, description="longer waits fail the request as transient instead"
    )
    max_retries: int = Field(
        default=5, ge=0, le=100, description="429 answers one request sits out before failing"
    )


class DataverseSettings(_Section):
    """Dataverse Web API v9.2 (Dynamics 365) with an Entra ID app registration.

    Defaults reach the emulator of ``d365sap emulators``; the secret comes from the environment
    (``D365SAP_DATAVERSE__CLIENT_SECRET``), ``client_secret_env`` or ``client_secret_file``, or
    a certificate is used instead (``private_key_file`` with ``certificate_file`` or
    ``certificate_thumbprint``).
    """

    environment_url: str = Field(
        default="https://127.0.0.1:18083", description="https://<org>.crm.dynamics.com"
    )
    authority: str = Field(
        default="https://127.0.0.1:18083",
        description="Entra host, https://login.microsoftonline.com in production",
    )
    tenant: str = Field(default="6f1c2a4e-8b3d-4c5e-9a7f-0d2b4e6c8a10", min_length=1)
    client_id: str = Field(default="3c9e7a52-1f4b-4d8e-a6c2-5b0f9d7e3a14", min_length=1)
    client_secret: SecretStr | None = Field(default=None, description="only from the environment")
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    private_key_file: Path | None = None
    certificate_file: Path | None = None
    certificate_thumbprint: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{40}$")
    ca_file: Path | None = Field(
        default=None,
        description="CA to trust instead of the system's (the emulator's var/dataverse-tls/ca.pem)",
    )
    timeout_seconds: float = Field(default=60.0, gt=0)
    token_refresh_margin_seconds: float = Field(default=300.0, ge=0)
    page_size: int = Field(default=500, ge=1, le=5000, description="Prefer: odata.maxpagesize")
    batch_size: int = Field(default=100, ge=1, le=1000, description="operations per $batch")
    rebaseline_max_rows: int = Field(
        default=10_000, ge=0, description="rows a re-baseline may hand on before it stops"
    )
    throttle: DataverseThrottleSettings = Field(default_factory=DataverseThrottleSettings)

    @field_validator("environment_url", "authority")
    @classmethod
    def _https_origin(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must start with https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_credential(self) -> DataverseSettings:
        secret = self.client_secret or self.client_secret_env or self.client_secret_file
        if secret and self.private_key_file:
            raise ValueError("a client secret and a certificate exclude each other")
        if self.private_key_file and not (self.certificate_file or self.certificate_thumbprint):
            raise ValueError("private_key_file needs certificate_file or certificate_thumbprint")
        return self

    def secret(self) -> str | None:
        """The client secret, if one is configured."""
        return SecretRef(
            password=self.client_secret,
            password_env=self.client_secret_env,
            password_file=self.client_secret_file,
        ).secret()

    def secret_problems(self) -> list[tuple[str, str]]:
        """Named secret sources and certificate files that cannot be read."""
        problems = [
            (where.replace("password", "client_secret"), why)
            for where, why in SecretRef(
                password_env=self.client_secret_env, password_file=self.client_secret_file
            ).secret_problems("dataverse")
        ]
        for name in ("private_key_file", "certificate_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                problems.append((f"dataverse.{name}", f"file {path} does not exist"))
        return problems


class LoggingSettings(_Section):
    """Structured logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "console"


class Settings(BaseSettings):
    """All of d365sap's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="D365SAP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    s4: S4Settings = Field(default_factory=S4Settings)
    erp: ErpSettings = Field(default_factory=ErpSettings)
    dataverse: DataverseSettings = Field(default_factory=DataverseSettings)
    dataverse_triggers: DataverseTriggerSettings = Field(default_factory=DataverseTriggerSettings)
    dataverse_flow: DataverseFlowSettings = Field(default_factory=DataverseFlowSettings)
    sales_orders: SalesOrderSettings = Field(default_factory=SalesOrderSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    emulators: EmulatorsSettings = Field(default_factory=EmulatorsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML document arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [u.name for u in self.inbound.users]
        if len(names) != len(set(names)):
            raise ValueError("inbound.users: user names must be unique")
        if self.runtime.kind == "procrastinate" and not self.store.url.startswith("postgresql"):
            raise ValueError("runtime.kind: procrastinate needs a postgresql store.url")
        return self

    def secret_problems(self) -> list[tuple[str, str]]:
        """Secrets that are configured but cannot be resolved."""
        problems = self.s4.secret_problems("s4") + self.erp.secret_problems("erp")
        problems += self.dataverse.secret_problems()
        problems += self.dataverse_triggers.secret_problems()
        problems += self.sales_orders.all_secret_problems()
        for index, user in enumerate(self.inbound.users):
            problems += user.secret_problems(f"inbound.users.{index}")
        return problems


def find_config_file(explicit: Path | None = None) -> Path | None:
    """The config file to read: ``explicit``, ``$D365SAP_CONFIG`` or ``./d365sap.toml``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _secret_keys_in(document: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}.{key}" if path else str(key)
            if key in SECRET_KEYS and not path.startswith("emulators"):
                found.append(
                    (
                        where,
                        "secrets are not read from the config file; use password_env, "
                        "password_file or the environment",
                    )
                )
            else:
                found += _secret_keys_in(value, where)
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found += _secret_keys_in(item, f"{path}.{index}")
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError([(str(path), "config file not found")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(path), f"not valid TOML: {exc}")]) from exc


def load_settings(path: Path | None = None, *, check_secrets: bool = False) -> Settings:
    """Load and validate the configuration; raise :class:`ConfigError` naming every bad field."""
    config_file = find_config_file(path)
    document = _read_toml(config_file) if config_file else {}
    problems = _secret_keys_in(document)
    settings: Settings | None = None
    try:
        settings = Settings(**document)
    except PydanticValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(root)"
            problems.append((where, error["msg"]))
    if settings is not None and check_secrets:
        problems += settings.secret_problems()
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings
