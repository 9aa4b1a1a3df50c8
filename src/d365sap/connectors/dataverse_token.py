"""Bearer tokens for the Dataverse Web API, from Entra ID through msal.

The Dataverse connector asks a :class:`TokenProvider` for a token before each request and calls
:meth:`~TokenProvider.invalidate` when the Web API still answers 401, so a revoked or expired
token is replaced once instead of failing every request until it ages out.

:class:`MsalTokenProvider` uses msal's ``ConfidentialClientApplication`` (client credentials,
with a secret or a certificate) and msal's own token cache. msal is synchronous and does network
I/O, so every call runs in a worker thread, one at a time; the token in hand is reused without
leaving the event loop until it is within the refresh margin of its expiry (five minutes by
default, at most half the token's lifetime), so a token is replaced before the Web API would
refuse it. msal talks through a ``requests.Session`` that trusts an extra CA file when given
one (the emulator's), without touching process-wide TLS settings.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msal
import requests

from d365sap.errors import PermanentError, TransientError

TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
"""OAuth error codes that say "try again later" rather than "your configuration is wrong"."""


class TokenProvider(Protocol):
    """Where the Dataverse connector gets its bearer token."""

    async def token(self) -> str:
        """A currently valid access token."""
        ...

    def invalidate(self) -> None:
        """Forget the current token: the next :meth:`token` fetches a new one (after a 401)."""
        ...


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate credential: the private key and either the certificate or its thumbprint.

    With ``certificate_pem`` msal signs assertions with PS256 and names the certificate by its
    SHA-256 thumbprint (and sends it in ``x5c``); with only ``thumbprint`` (SHA-1, hex, as the
    Azure portal shows it) msal uses RS256 and ``x5t``.
    """

    private_key_pem: str
    certificate_pem: str | None = None
    thumbprint: str | None = None
    passphrase: str | None = None

    def __post_init__(self) -> None:
        if not self.certificate_pem and not self.thumbprint:
            raise ValueError("certificate: certificate_pem or thumbprint is needed")

    def msal_credential(self) -> dict[str, str]:
        """The ``client_credential`` dict msal expects."""
        credential = {"private_key": self.private_key_pem}
        if self.thumbprint:
            credential["thumbprint"] = self.thumbprint
        if self.certificate_pem:
            credential["public_certificate"] = self.certificate_pem
        if self.passphrase:
            credential["passphrase"] = self.passphrase
        return credential


class _TrustingSession:
    """msal's HTTP client: a ``requests.Session`` with a CA bundle and a timeout per call.

    ``verify`` is passed with every request, not only set on the session: requests lets
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session-level setting, which would
    silently drop the emulator's CA on machines that set those variables.
    """

    def __init__(self, verify: str | bool, timeout: float) -> None:
        self.session = requests.Session()
        self.session.verify = verify
        self.verify = verify
        self.timeout = timeout

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        return self.session.get(url, params=params, headers=headers, **kwargs)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        return self.session.post(url, params=params, data=data, headers=headers, **kwargs)

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float
    lifetime: float


class MsalTokenProvider:
    """App-only tokens for ``<environment_url>/.default`` from ``<authority>/<tenant>``.

    ``authority`` is the Entra host URL (``https://login.microsoftonline.com``, or the
    emulator's ``https://127.0.0.1:<port>``). Exactly one of ``client_secret`` and
    ``certificate`` is needed. ``ca_file`` is an extra CA bundle to trust instead of the
    system's (the emulator's CA). Instance discovery is off: it would ask Microsoft's service
    about the host, which a private emulator is not known to, and a public Entra host needs no
    such check.
    """

    def __init__(
        self,
        *,
        authority: str,
        tenant: str,
        client_id: str,
        environment_url: str,
        client_secret: str | None = None,
        certificate: ClientCertificate | None = None,
        ca_file: Path | None = None,
        refresh_margin_seconds: float = 300.0,
        timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (client_secret is None) == (certificate is None):
            raise ValueError("exactly one of client_secret and certificate is needed")
        if not authority.startswith("https://"):
            raise ValueError(f"authority: {authority!r} must be an https:// URL")
        if not tenant.strip("/"):
            raise ValueError("tenant: a tenant id or domain is needed")
        self.authority = f"{authority.rstrip('/')}/{tenant.strip('/')}"
        self.client_id = client_id
        self.scope = f"{environment_url.rstrip('/')}/.default"
        self._credential: str | dict[str, str] = (
            client_secret if client_secret is not None else certificate.msal_credential()  # type: ignore[union-attr]
        )
        self._ca_file = ca_file
        self._margin = refresh_margin_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: _TrustingSession | None = None
        self._current: _Token | None = None
        self._drop_cache = False
        self._generation = 0
        self._issued_lifetime = 0.0
        self.requests_to_entra = 0
        """How many times msal was asked (cache hits included); for tests and diagnostics."""

    async def token(self) -> str:
        """A token with more than the refresh margin left, fetched in a worker thread if needed."""
        current = self._current
        if current is not None and self._fresh(current):
            return current.value
        return await asyncio.to_thread(self._token_blocking)

    def invalidate(self) -> None:
        """Drop the token in hand and msal's cached copy; the next call goes to Entra.

        Never waits for a token request in flight (it is called on the event loop); a request
        that was already running when this was called does not keep its answer.
        """
        self._generation += 1
        self._current = None
        self._drop_cache = True

    def close(self) -> None:
        """Release msal's HTTP session."""
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._app = None
            self._http = None

    # Inside the worker thread ------------------------------------------------------------

    def _fresh(self, token: _Token) -> bool:
        margin = min(self._margin, token.lifetime / 2)
        return token.expires_at - self._clock() > margin

    def _token_blocking(self) -> str:
        with self._lock:  # one msal call at a time; a waiter reuses the winner's token
            generation = self._generation
            current = self._current
            if current is not None and self._fresh(current):
                return current.value
            app = self._application()
            if self._drop_cache:
                self._drop_cache = False
                app.remove_tokens_for_client()
            token = self._acquire(app)
            if not self._fresh(token):
                # msal's cache keeps a token until five minutes before expiry; a larger margin
                # is ours to enforce, so drop the cached one and ask Entra again.
                app.remove_tokens_for_client()
                token = self._acquire(app)
            if generation == self._generation:  # not invalidated meanwhile
                self._current = token
            return token.value

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is not None:
            return self._app
        http = _TrustingSession(str(self._ca_file) if self._ca_file else True, self._timeout)
        try:
            app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._credential,
                authority=self.authority,
                http_client=http,
                instance_discovery=False,
                token_cache=msal.TokenCache(),
            )
        except requests.RequestException as exc:
            http.close()
            raise self._transport_error(exc) from exc
        except msal.exceptions.MsalServiceError as exc:
            http.close()
            raise TransientError(f"Entra ID {self.authority} discovery failed: {exc}") from exc
        except ValueError as exc:
            http.close()
            # msal replaces the discovery answer (e.g. AADSTS90002, unknown tenant) by a generic
            # message; the answer itself is the exception it was raised from.
            cause = exc.__context__ if isinstance(exc.__context__, ValueError) else None
            detail = f"{exc} ({cause})" if cause else str(exc)
            raise PermanentError(
                f"Entra ID authority {self.authority} refused: {detail}",
                backend_message=str(cause or exc),
            ) from exc
        self._app, self._http = app, http
        return app

    def _acquire(self, app: msal.ConfidentialClientApplication) -> _Token:
        self.requests_to_entra += 1
        try:
            result: Mapping[str, Any] = app.acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            raise self._transport_error(exc) from exc
        if "access_token" not in result:
            raise self._refusal(result)
        left = float(result.get("expires_in", 0))
        if result.get("token_source") == "cache" and self._issued_lifetime:
            # msal reports what is left of a cached token; the margin is based on the lifetime
            # Entra gave it, which is the last one seen (the cache only holds tokens fetched here).
            lifetime = self._issued_lifetime
        else:
            lifetime = self._issued_lifetime = left
        return _Token(str(result["access_token"]), self._clock() + left, lifetime)

    def _transport_error(self, exc: requests.RequestException) -> Exception:
        """A certificate Entra's host is not trusted with does not heal by retrying."""
        if isinstance(exc, requests.exceptions.SSLError):
            return PermanentError(f"Entra ID {self.authority}: TLS verification failed: {exc}")
        return TransientError(f"Entra ID {self.authority} unreachable: {exc}")

    def _refusal(self, result: Mapping[str, Any]) -> Exception:
        error = str(result.get("error", "unknown_error"))
        description = str(result.get("error_description", "")).strip()
        message = f"Entra ID refused a token for client {self.client_id}: {error}: {description}"
        if error in TRANSIENT_ERRORS:
            return TransientError(message, backend_message=description)
        return PermanentError(message, code=error, backend_message=description)
