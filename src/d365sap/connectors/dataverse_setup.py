"""The Dataverse connector built from the ``[dataverse]`` settings.

:func:`token_provider` reads the credential (a client secret from the environment, a named
variable or a file; or a certificate's private key with the certificate or its thumbprint) and
returns msal's provider; :func:`dataverse_client` the client over it, with the deployment's
throttle when the caller has one (``engine.throttle.SharedThrottle``). A missing credential or
an unreadable file is a :class:`~d365sap.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from pathlib import Path

import httpx2

from d365sap.config import DataverseSettings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_http import RequestThrottle
from d365sap.connectors.dataverse_token import ClientCertificate, MsalTokenProvider
from d365sap.errors import ConfigError


def _read(path: Path, field: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(field, f"cannot read {path}: {exc.strerror or exc}")]) from exc


def certificate(settings: DataverseSettings) -> ClientCertificate | None:
    """The certificate credential, when ``private_key_file`` is set."""
    if settings.private_key_file is None:
        return None
    key = _read(settings.private_key_file, "dataverse.private_key_file")
    cert = (
        _read(settings.certificate_file, "dataverse.certificate_file")
        if settings.certificate_file
        else None
    )
    return ClientCertificate(key, certificate_pem=cert, thumbprint=settings.certificate_thumbprint)


def token_provider(settings: DataverseSettings) -> MsalTokenProvider:
    """msal's provider for the configured app registration."""
    try:
        secret = settings.secret()
    except OSError as exc:
        raise ConfigError([("dataverse.client_secret_file", str(exc))]) from exc
    if settings.client_secret_env and secret is None:
        raise ConfigError(
            [("dataverse.client_secret_env", f"{settings.client_secret_env} is not set")]
        )
    cert = certificate(settings)
    if not secret and cert is None:
        raise ConfigError(
            [
                (
                    "dataverse.client_secret",
                    "no credential: set D365SAP_DATAVERSE__CLIENT_SECRET, client_secret_env, "
                    "client_secret_file or private_key_file",
                )
            ]
        )
    if settings.ca_file is not None and not settings.ca_file.is_file():
        raise ConfigError([("dataverse.ca_file", f"file {settings.ca_file} does not exist")])
    try:
        return MsalTokenProvider(
            authority=settings.authority,
            tenant=settings.tenant,
            client_id=settings.client_id,
            environment_url=settings.environment_url,
            client_secret=secret if cert is None else None,
            certificate=cert,
            ca_file=settings.ca_file,
            refresh_margin_seconds=settings.token_refresh_margin_seconds,
            timeout_seconds=settings.timeout_seconds,
        )
    except ValueError as exc:
        raise ConfigError([("dataverse", str(exc))]) from exc


def dataverse_client(
    settings: DataverseSettings,
    tokens: MsalTokenProvider | None = None,
    *,
    throttle: RequestThrottle | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> DataverseClient:
    """A client for the configured environment (its own token provider unless given one)."""
    return DataverseClient(
        settings.environment_url,
        tokens or token_provider(settings),
        ca_file=settings.ca_file,
        timeout=settings.timeout_seconds,
        throttle=throttle,
        max_throttle_retries=settings.throttle.max_retries,
        page_size=settings.page_size,
        transport=transport,
    )
