"""Entra ID (Azure AD v2 endpoint) for the Dataverse emulator: app-only tokens and their check.

A Dataverse client gets its bearer token from Entra with the client credentials grant, using a
client secret or a certificate, for the scope ``<environment URL>/.default``. The emulator plays
both sides so msal's ``ConfidentialClientApplication`` works against it unchanged (authority
``https://127.0.0.1:<port>/<tenant>``, over TLS, see :mod:`d365sap.emulators.tls`):

- :meth:`TokenIssuer.router` serves OIDC discovery, the signing keys, instance discovery and
  ``POST /{tenant}/oauth2/v2.0/token`` (routes in :mod:`.identity_routes`);
- :meth:`TokenIssuer.verify` is the Web API's side: every request's ``Authorization`` header is
  checked and turned into the :class:`Caller` that service protection counts against.

Tokens are what Entra issues for Dataverse: v1.0 access tokens (Dataverse's resource is a v1
resource), RS256, ``iss`` ``https://sts.windows.net/<tenant id>/``, ``aud`` the environment URL.
Demo applications and secrets in the settings are credentials of a fake tenant, like the other
emulators' users.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from d365sap.emulators.dataverse import identity_errors as errors
from d365sap.emulators.dataverse.identity_assertion import JWT_BEARER, verify_assertion
from d365sap.emulators.dataverse.identity_keys import ApplicationCertificate, SigningKey
from d365sap.emulators.dataverse.messages import Caller, WebApiResponse

if TYPE_CHECKING:
    from fastapi import APIRouter

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DEFAULT_TENANT_ID = "6f1c2a4e-8b3d-4c5e-9a7f-0d2b4e6c8a10"
DEMO_CLIENT_ID = "3c9e7a52-1f4b-4d8e-a6c2-5b0f9d7e3a14"
DEMO_CLIENT_SECRET = "d365sap-demo-secret"  # demo credential of a fake tenant
DEMO_APPLICATION_USER_ID = "a1d4f6b8-2c3e-4f5a-8b9c-7e6d5c4b3a21"
STS_ISSUER = "https://sts.windows.net/{tenant}/"
SHARED_TENANTS = frozenset({"common", "organizations", "consumers"})
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class EntraApplication(BaseModel):
    """An app registration with its application user in the Dataverse environment."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=GUID_PATTERN, description="application (client) id")
    display_name: str = Field(default="d365sap integration", min_length=1)
    client_secret: SecretStr | None = Field(default=None, description="demo client secret")
    certificate_file: Path | None = Field(
        default=None, description="public certificate (PEM) for client assertions"
    )
    user_id: str = Field(
        pattern=GUID_PATTERN,
        description="object id of the application user; service protection counts per user",
    )

    @model_validator(mode="after")
    def _has_a_credential(self) -> EntraApplication:
        if self.client_secret is None and self.certificate_file is None:
            raise ValueError("client_secret or certificate_file is needed")
        if self.client_secret is not None and not self.client_secret.get_secret_value():
            raise ValueError("client_secret must not be empty")
        return self


def _demo_application() -> EntraApplication:
    return EntraApplication(
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretStr(DEMO_CLIENT_SECRET),
        user_id=DEMO_APPLICATION_USER_ID,
    )


class EntraSettings(BaseModel):
    """The emulated tenant: its id and names, its applications, and token lifetime."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(default=DEFAULT_TENANT_ID, pattern=GUID_PATTERN)
    tenant_domains: list[str] = Field(
        default_factory=lambda: ["d365sap-demo.onmicrosoft.com"],
        description="verified domain names accepted in place of the tenant id",
    )
    directory_name: str = Field(default="d365sap demo", min_length=1)
    applications: list[EntraApplication] = Field(default_factory=lambda: [_demo_application()])
    token_lifetime_seconds: int = Field(
        default=3599, ge=1, le=86400, description="expires_in of issued tokens; short for tests"
    )

    @field_validator("tenant_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not _DOMAIN.match(domain.lower()):
                raise ValueError(f"{domain!r} is not a DNS name")
        return [domain.lower() for domain in value]

    @field_validator("applications")
    @classmethod
    def _unique_clients(cls, value: list[EntraApplication]) -> list[EntraApplication]:
        seen: set[str] = set()
        for app in value:
            if app.client_id.lower() in seen:
                raise ValueError(f"client_id {app.client_id} is registered twice")
            seen.add(app.client_id.lower())
        return value


RejectionKind = Literal["missing", "malformed", "signature", "expired", "audience", "issuer"]


class TokenRejected(Exception):  # noqa: N818 - the name the Web API code uses
    """The Web API refuses a request's bearer token; :meth:`response` is the 401 to send.

    Dataverse answers every authentication failure (no header, a malformed, tampered, expired or
    foreign token) the same way: 401, an empty body, and a ``WWW-Authenticate`` challenge naming
    the authority and the resource, which clients such as the Dataverse SDK's
    ``AuthorityResolver`` read to find where to get a token. :attr:`reason` says what was wrong,
    for the emulator's log and journal only.
    """

    def __init__(self, kind: RejectionKind, reason: str, challenge: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.challenge = challenge

    def response(self) -> WebApiResponse:
        """401 with the Bearer challenge and no body."""
        return WebApiResponse(401, {"www-authenticate": self.challenge}, b"")


@dataclass(frozen=True)
class IssuedToken:
    """What the emulator remembers of a token it issued (not the token itself)."""

    uti: str
    client_id: str
    user_id: str
    credential: Literal["secret", "certificate"]
    issued_at: int
    expires_at: int
    expired_on_demand: bool = False


@dataclass(frozen=True)
class _Registration:
    application: EntraApplication
    certificates: tuple[ApplicationCertificate, ...]


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name) or []
    return values[0] if values and values[0] else None


class TokenIssuer:
    """Issues and checks the tenant's access tokens for one Dataverse environment.

    ``resource_url`` is the environment URL clients ask a token for (scope
    ``<resource_url>/.default``) and the ``aud`` of its tokens. The authority the Web API names
    in its 401 challenge is ``authority_url`` or, by default, the resource's own origin, since
    the emulator serves both. When the port is only known after the server bound, set
    :attr:`resource_url` (and :attr:`authority_url`) then.
    """

    def __init__(
        self, settings: EntraSettings, resource_url: str, *, authority_url: str | None = None
    ) -> None:
        self.settings = settings
        self._registrations: dict[str, _Registration] = {}
        for index, app in enumerate(settings.applications):
            certificates: tuple[ApplicationCertificate, ...] = ()
            if app.certificate_file is not None:
                try:
                    certificates = (ApplicationCertificate.load(app.certificate_file),)
                except ValueError as exc:
                    raise ValueError(f"applications[{index}].certificate_file: {exc}") from exc
            self._registrations[app.client_id.lower()] = _Registration(app, certificates)
        self.resource_url = resource_url
        self.authority_url = authority_url
        self.issuer = STS_ISSUER.format(tenant=settings.tenant_id)
        self._key = SigningKey(self.issuer)
        self._lock = threading.Lock()
        self._issued: dict[str, IssuedToken] = {}
        self.clock = time.time

    # URLs --------------------------------------------------------------------------------

    @property
    def resource_url(self) -> str:
        """The environment URL (no trailing slash): the audience of issued tokens."""
        return self._resource_url

    @resource_url.setter
    def resource_url(self, value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"resource_url: {value!r} is not an absolute http(s) URL")
        self._resource_url = value.rstrip("/")

    @property
    def authority_url(self) -> str:
        """Scheme and host of the token endpoint, e.g. ``https://127.0.0.1:8443``."""
        if self._authority_url is not None:
            return self._authority_url
        parts = urlsplit(self._resource_url)
        return f"{parts.scheme}://{parts.netloc}"

    @authority_url.setter
    def authority_url(self, value: str | None) -> None:
        self._authority_url = value.rstrip("/") if value else None

    @property
    def signing_key(self) -> SigningKey:
        """The key tokens are signed with (published by the JWKS route)."""
        return self._key

    def challenge(self) -> str:
        """The Web API's ``WWW-Authenticate`` value."""
        return (
            f"Bearer authorization_uri={self.authority_url}/{self.settings.tenant_id}"
            f"/oauth2/authorize, resource_id={self._resource_url}/"
        )

    def router(self) -> APIRouter:
        """Discovery, keys and the token endpoint (mount at the root of the emulator app)."""
        from d365sap.emulators.dataverse.identity_routes import token_router

        return token_router(self)

    def admin_router(self) -> APIRouter:
        """``/emulator/identity/...``: list issued tokens and expire them on demand."""
        from d365sap.emulators.dataverse.identity_routes import admin_router

        return admin_router(self)

    # Tenant ------------------------------------------------------------------------------

    def resolve_tenant(self, tenant: str, *, discovery: bool = False) -> str:
        """The tenant id a path segment names, or the :class:`EntraError` Entra answers."""
        lowered = tenant.lower()
        if lowered == self.settings.tenant_id.lower() or lowered in self.settings.tenant_domains:
            return self.settings.tenant_id
        try:
            uuid.UUID(tenant)
        except ValueError:
            if not _DOMAIN.match(lowered):
                raise errors.tenant_identifier_invalid(tenant) from None
        raise errors.tenant_not_found(tenant, discovery=discovery)

    # Token endpoint ----------------------------------------------------------------------

    def issue(
        self, form: Mapping[str, Sequence[str]], audiences: Sequence[str]
    ) -> dict[str, object]:
        """Answer one token request (already parsed form) or raise :class:`EntraError`.

        ``audiences`` are the URLs a client assertion may name as its ``aud``: the token
        endpoint as the client called it and as discovery announced it.
        """
        for name, values in form.items():
            if len(values) > 1:
                raise errors.duplicated_parameter(name)
        grant_type = _single(form, "grant_type")
        if grant_type is None:
            raise errors.missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise errors.unsupported_grant(grant_type)
        client_id = _single(form, "client_id")
        if client_id is None:
            raise errors.missing_parameter("client_id")
        registration = self._registrations.get(client_id.lower())
        if registration is None:
            raise errors.unknown_client(client_id, self.settings.directory_name)
        app = registration.application
        credential = self._authenticate(registration, form, audiences)
        scope = _single(form, "scope")
        if scope is None:
            raise errors.missing_parameter("scope")
        self._check_scope(scope)
        return self._mint(app, credential)

    def _authenticate(
        self,
        registration: _Registration,
        form: Mapping[str, Sequence[str]],
        audiences: Sequence[str],
    ) -> Literal["secret", "certificate"]:
        app = registration.application
        secret = _single(form, "client_secret")
        assertion = _single(form, "client_assertion")
        if secret is not None and assertion is not None:
            raise errors.both_credentials()
        if secret is not None:
            expected = app.client_secret.get_secret_value() if app.client_secret else None
            if expected is None or not hmac.compare_digest(
                secret.encode("utf-8"), expected.encode("utf-8")
            ):
                raise errors.invalid_secret(app.client_id)
            return "secret"
        if assertion is None:
            raise errors.missing_credential()
        assertion_type = _single(form, "client_assertion_type")
        if assertion_type != JWT_BEARER:
            raise errors.assertion_type_invalid(assertion_type or "")
        verify_assertion(
            assertion,
            client_id=app.client_id,
            certificates=registration.certificates,
            audiences=audiences,
            now=self.clock(),
        )
        return "certificate"

    def _check_scope(self, scope: str) -> None:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise errors.scope_not_default(scope)
        resource = scopes[0].removesuffix("/.default")
        if resource.rstrip("/").lower() != self._resource_url.lower():
            raise errors.unknown_resource(resource, self.settings.directory_name)

    def _mint(
        self, app: EntraApplication, credential: Literal["secret", "certificate"]
    ) -> dict[str, object]:
        now = int(self.clock())
        lifetime = self.settings.token_lifetime_seconds
        record = IssuedToken(
            uti=secrets.token_urlsafe(16),
            client_id=app.client_id,
            user_id=app.user_id,
            credential=credential,
            issued_at=now,
            expires_at=now + lifetime,
        )
        claims = {
            "aud": self._resource_url,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": record.expires_at,
            "aio": secrets.token_urlsafe(48),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "1" if credential == "secret" else "2",
            "idp": self.issuer,
            "idtyp": "app",
            "oid": app.user_id,
            "rh": secrets.token_urlsafe(24),
            "sub": app.user_id,
            "tid": self.settings.tenant_id,
            "uti": record.uti,
            "ver": "1.0",
        }
        token = self._key.sign(claims)
        with self._lock:
            self._forget_old(now)
            self._issued[record.uti] = record
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _forget_old(self, now: int) -> None:
        """Drop records of tokens that expired more than a minute ago (caller holds the lock)."""
        stale = [uti for uti, record in self._issued.items() if record.expires_at < now - 60]
        for uti in stale:
            del self._issued[uti]

    # Tokens issued -----------------------------------------------------------------------

    @property
    def issued(self) -> list[IssuedToken]:
        """Tokens issued and not yet forgotten, oldest first."""
        with self._lock:
            return list(self._issued.values())

    def expire_tokens(self, client_id: str | None = None) -> int:
        """Make every token issued so far (to ``client_id``, or to anyone) count as expired.

        The Web API then refuses them exactly as it refuses a token past its ``exp``, so a test
        can cover a client's handling of an expired token without waiting for one.
        """
        count = 0
        with self._lock:
            for uti, record in self._issued.items():
                if client_id is not None and record.client_id.lower() != client_id.lower():
                    continue
                if not record.expired_on_demand:
                    self._issued[uti] = replace(record, expired_on_demand=True)
                    count += 1
        return count

    # Web API side ------------------------------------------------------------------------

    def verify(self, authorization: str | None) -> Caller:
        """The caller a request's ``Authorization`` header proves, or :class:`TokenRejected`."""
        if authorization is None or not authorization.strip():
            raise self._reject("missing", "the request has no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise self._reject("malformed", "the Authorization header is not a Bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise self._reject("malformed", f"the bearer token is not a JWT: {exc}") from exc
        if header.get("kid") != self._key.kid or header.get("alg") != "RS256":
            raise self._reject("signature", "the token was not signed with this tenant's key")
        try:
            claims = jwt.decode(
                token,
                self._key.public_key,
                algorithms=["RS256"],
                audience=[self._resource_url, f"{self._resource_url}/"],
                issuer=self.issuer,
                options={"require": ["exp", "nbf", "iat", "aud", "iss", "appid", "oid", "uti"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise self._reject("signature", "the token signature does not verify") from exc
        except jwt.ExpiredSignatureError as exc:
            raise self._reject("expired", "the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise self._reject("audience", f"the token is not for {self._resource_url}") from exc
        except jwt.InvalidIssuerError as exc:
            raise self._reject("issuer", f"the token was not issued by {self.issuer}") from exc
        except jwt.InvalidTokenError as exc:
            raise self._reject("malformed", f"the token is not valid: {exc}") from exc
        with self._lock:
            record = self._issued.get(str(claims["uti"]))
        if record is not None and record.expired_on_demand:
            raise self._reject("expired", "the token has expired (expired on demand)")
        return Caller(user_id=str(claims["oid"]), client_id=str(claims["appid"]))

    def _reject(self, kind: RejectionKind, reason: str) -> TokenRejected:
        return TokenRejected(kind, reason, self.challenge())
