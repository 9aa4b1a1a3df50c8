"""The front door of the OData service, as SAP's ICF layer does it before Gateway runs.

One pure ASGI middleware handles what applies to every OData request, ``$batch`` included:
body size limit, HTTP basic authentication (401 with SAP's realm), CSRF token fetch and check
(403 ``CSRF token validation failed`` with ``x-csrf-token: Required``), SAP's response headers,
and the request journal (so even rejected writes show up in ``/emulator/requests``).

Injected faults are decided in front of it (``fault_injection``); the two that S/4 itself must
carry out, an expired CSRF token and an entity changed behind the client's back, are applied here
where S/4 would notice them (see ``fault_hooks``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from http.cookies import CookieError, SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from d365sap.emulators.faults import FaultKind
from d365sap.emulators.faults_asgi import FAULT_KEY
from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.csrf import FAILED_BODY
from d365sap.emulators.s4.fault_hooks import change_etag, expire_csrf_token
from d365sap.emulators.s4.messages import MODIFYING
from d365sap.emulators.s4.services import BUSINESS_PARTNER, ServiceSpec, service_for
from d365sap.emulators.s4.state import EmulatorState

USER_KEY = "d365sap.s4.user"
METHOD_KEY = "d365sap.s4.method"
BODY_KEY = "d365sap.s4.body"
_LOGON_FAILED = b"<html><head><title>Logon Error</title></head><body>Logon failed</body></html>"


def effective_method(method: str, headers: dict[str, str]) -> str:
    """``POST`` with ``X-HTTP-Method: MERGE`` (or PATCH/PUT/DELETE) counts as that method."""
    override = headers.get("x-http-method", "").upper()
    if method == "POST" and override in ("MERGE", "PATCH", "PUT", "DELETE"):
        return override
    return method


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


async def _reply(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def journal_path(spec: ServiceSpec, raw_path: str) -> str:
    """What the journal shows: below the root for API_BUSINESS_PARTNER, else the whole path."""
    if spec is BUSINESS_PARTNER:
        return raw_path[len(spec.root.rstrip("/")) :].lstrip("/")
    return raw_path


class ODataGate:
    """ASGI middleware in front of every hosted OData service (``/sap/opu/odata/sap/...``)."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    def _user(self, headers: dict[str, str]) -> str | None:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep:
            return None
        for user in self.state.settings.users:
            same_name = secrets.compare_digest(user.name.upper(), name.upper())
            same_password = secrets.compare_digest(
                user.password.get_secret_value().encode(), password.encode()
            )
            if same_name and same_password:
                return user.name
        return None

    def _journal(
        self,
        spec: ServiceSpec,
        scope: Scope,
        method: str,
        headers: dict[str, str],
        body: bytes,
        status: int,
        user: str | None,
    ) -> None:
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        self.state.journal.record(
            method=method,
            path=journal_path(spec, path),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            status=status,
            user=user,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        spec = service_for(path)
        if spec is None:
            await self.app(scope, receive, send)
            return
        fault = scope.get(FAULT_KEY)
        headers = _headers(scope)
        method = effective_method(scope["method"], headers)
        body = await _read_body(receive, self.state.settings.max_body_bytes)
        if body is None:
            error = errors.ODataError(
                413,
                errors.PAYLOAD_TOO_LARGE,
                f"Request body exceeds {self.state.settings.max_body_bytes} bytes",
            )
            json_type = ("content-type", "application/json; charset=utf-8")
            body = errors.error_bytes(error, application=spec.application)
            await _reply(send, 413, [json_type], body)
            return
        user = self._user(headers)
        if user is None:
            if method in MODIFYING:
                self._journal(spec, scope, method, headers, body, 401, None)
            www = ("www-authenticate", self.state.realm)
            await _reply(
                send, 401, [www, ("content-type", "text/html; charset=utf-8")], _LOGON_FAILED
            )
            return
        session = _cookie(headers, self.state.session_cookie)
        extra: list[tuple[str, str]] = [("sap-server", "true")]
        if method in MODIFYING:
            if fault is FaultKind.CSRF_EXPIRY:
                expire_csrf_token(self.state, session)
            if not self.state.csrf.validate(session, headers.get("x-csrf-token"), user):
                self._journal(spec, scope, method, headers, body, 403, user)
                failed = [
                    ("x-csrf-token", "Required"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("sap-server", "true"),
                ]
                await _reply(send, 403, failed, FAILED_BODY)
                return
        elif headers.get("x-csrf-token", "").lower() == "fetch":
            session_id, token, created = self.state.csrf.fetch(session, user)
            extra.append(("x-csrf-token", token))
            if created:
                extra.append(
                    ("set-cookie", f"{self.state.session_cookie}={session_id}; path=/; HttpOnly")
                )
                client = self.state.settings.sap_client
                extra.append(("set-cookie", f"sap-usercontext=sap-client={client}; path=/"))
        if fault is FaultKind.ETAG_CHANGE:
            raw = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            root = spec.root.rstrip("/")
            change_etag(self.state.host(spec), raw[len(root) :].lstrip("/"))
        inner = dict(scope)
        inner[USER_KEY], inner[METHOD_KEY], inner[BODY_KEY] = user, method, body
        status: list[int] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(inner, receive, send_with_headers)
        if method in MODIFYING:
            answered = status[0] if status else 500
            self._journal(spec, scope, method, headers, body, answered, user)
