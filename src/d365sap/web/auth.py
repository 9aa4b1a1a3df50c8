"""HTTP basic authentication with roles for the inbound endpoints.

The package's sender channel is "role based" (``ESBMessaging.send``); here each configured user
has a password (from the environment or a file) and roles. Wrong or missing credentials get 401,
a known user without the role gets 403.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from d365sap.config import InboundSettings
from d365sap.web.errors import error_response


@dataclass(frozen=True)
class AuthFailure:
    """Why a request was refused: the status (401/403) and a message."""

    status: int
    message: str


class BasicAuthenticator:
    """Checks ``Authorization: Basic …`` against the configured inbound users."""

    realm = "d365sap"

    def __init__(self, settings: InboundSettings) -> None:
        self._required_role = settings.required_role
        self._users: dict[str, tuple[str, frozenset[str]]] = {}
        for user in settings.users:
            password = user.secret()
            if password is not None:
                self._users[user.name] = (password, frozenset(user.roles))

    def check(self, header: str | None) -> AuthFailure | None:
        """``None`` when the caller may send; otherwise why not."""
        if not header or not header.lower().startswith("basic "):
            return AuthFailure(401, "authentication required (HTTP basic)")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return AuthFailure(401, "malformed basic credentials")
        name, sep, password = decoded.partition(":")
        if not sep:
            return AuthFailure(401, "malformed basic credentials")
        known = self._users.get(name)
        # Compare against a dummy for unknown users so timing does not reveal user names.
        expected = known[0] if known else secrets.token_hex(16)
        if not secrets.compare_digest(password.encode(), expected.encode()) or known is None:
            return AuthFailure(401, "invalid user or password")
        if self._required_role not in known[1]:
            return AuthFailure(403, f"user {name!r} lacks role {self._required_role!r}")
        return None


def refusal(failure: AuthFailure) -> JSONResponse:
    """The error answer for a refused caller (with the basic-auth challenge on 401)."""
    headers = {"WWW-Authenticate": 'Basic realm="d365sap"'} if failure.status == 401 else None
    return error_response(
        failure.status,
        "AuthenticationError",
        failure.message,
        field="Authorization",
        headers=headers,
    )
