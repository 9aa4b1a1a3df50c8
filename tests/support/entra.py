"""The emulated Entra ID on a real TLS loopback port, and certificates for client assertions.

:func:`identity_server` runs the token routes, the admin routes and one protected route
(``GET /api/data/v9.2/WhoAmI``, which calls :meth:`TokenIssuer.verify` as the Web API does) under
uvicorn with the certificate from :func:`ensure_tls`, so msal is driven exactly as against the
real service: discovery, token request and TLS verification against the emulator's CA.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response

from d365sap.connectors.dataverse_token import ClientCertificate, MsalTokenProvider
from d365sap.emulators.dataverse.identity import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EntraSettings,
    TokenIssuer,
    TokenRejected,
)
from d365sap.emulators.tls import TlsFiles
from d365sap.web.serving import BackgroundServer

WHOAMI = "/api/data/v9.2/WhoAmI"


@dataclass(frozen=True)
class AppCertificate:
    """A self-signed certificate and its key, as an app registration would hold them."""

    cert_file: Path
    certificate_pem: str
    private_key_pem: str
    thumbprint: str

    def credential(self, *, by_thumbprint: bool = False) -> ClientCertificate:
        """The provider's credential: SHA-1 thumbprint (RS256) or the certificate (PS256)."""
        if by_thumbprint:
            return ClientCertificate(self.private_key_pem, thumbprint=self.thumbprint)
        return ClientCertificate(self.private_key_pem, certificate_pem=self.certificate_pem)


def make_app_certificate(directory: Path, name: str = "app") -> AppCertificate:
    """A fresh RSA key and self-signed certificate, the certificate written to ``name.pem``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"d365sap test {name}")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    cert_file = directory / f"{name}.pem"
    cert_file.write_text(certificate_pem)
    private_key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
    return AppCertificate(cert_file, certificate_pem, private_key_pem, thumbprint)


@dataclass
class IdentityServer:
    """A running emulated tenant."""

    issuer: TokenIssuer
    server: BackgroundServer
    tls: TlsFiles

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def tenant_id(self) -> str:
        return self.issuer.settings.tenant_id

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    def provider(self, **overrides: Any) -> MsalTokenProvider:
        """A token provider for this tenant; the demo app's secret unless overridden."""
        options: dict[str, Any] = {
            "authority": self.url,
            "tenant": self.tenant_id,
            "client_id": DEMO_CLIENT_ID,
            "environment_url": self.url,
            "ca_file": self.tls.ca_file,
        }
        if "certificate" not in overrides:
            options["client_secret"] = DEMO_CLIENT_SECRET
        options.update(overrides)
        return MsalTokenProvider(**options)


def _app(issuer: TokenIssuer) -> FastAPI:
    app = FastAPI()
    app.include_router(issuer.router())
    app.include_router(issuer.admin_router())

    @app.get(WHOAMI)
    async def whoami(request: Request) -> Response:
        try:
            caller = issuer.verify(request.headers.get("authorization"))
        except TokenRejected as exc:
            reply = exc.response()
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
        body = {"UserId": caller.user_id, "ClientId": caller.client_id}
        return Response(json.dumps(body), media_type="application/json")

    return app


@contextmanager
def identity_server(settings: EntraSettings, tls: TlsFiles) -> Iterator[IdentityServer]:
    """Serve ``settings``' tenant over HTTPS on a free loopback port."""
    issuer = TokenIssuer(settings, "https://127.0.0.1")
    server = BackgroundServer(
        _app(issuer), name="entra", ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file
    )
    with server:
        issuer.resource_url = server.url
        yield IdentityServer(issuer, server, tls)
