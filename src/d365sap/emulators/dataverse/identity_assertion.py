"""Client assertions: the signed JWT a confidential client sends instead of a secret.

msal signs the assertion with the application's certificate key and names the certificate in
the header (``x5t#S256`` with PS256 when it knows the certificate, ``x5t`` with RS256 when it
only has a SHA-1 thumbprint). Entra finds the registered certificate by that name, checks the
signature with it, then the claims: ``iss`` and ``sub`` are the client id, ``aud`` is the token
endpoint, and the assertion is inside its lifetime. msal reuses one assertion for up to nine
minutes, so an assertion may be presented more than once; like Entra, the emulator does not
refuse a repeated ``jti``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt

from d365sap.emulators.dataverse import identity_errors as errors
from d365sap.emulators.dataverse.identity_keys import ApplicationCertificate

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = frozenset({"RS256", "PS256"})
CLOCK_SKEW_SECONDS = 300
"""Tolerance for the assertion's ``nbf``/``exp`` against the server clock."""


def _thumbprint_hint(header: dict[str, Any]) -> str:
    """The thumbprint the client named, in hex capitals as Entra reports it."""
    for name in ("x5t", "x5t#S256"):
        value = header.get(name)
        if isinstance(value, str) and value:
            try:
                return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex().upper()
            except (binascii.Error, ValueError):
                return value
    return ""


def _normalised(url: str) -> str:
    return url.rstrip("/").lower()


def _moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def verify_assertion(
    assertion: str,
    *,
    client_id: str,
    certificates: Sequence[ApplicationCertificate],
    audiences: Collection[str],
    now: float,
) -> None:
    """Accept ``assertion`` for ``client_id`` or raise the :class:`EntraError` Entra would."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError as exc:
        raise errors.assertion_malformed(str(exc)) from exc
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise errors.assertion_malformed(f"Unsupported signing algorithm '{algorithm}'.")
    thumbprint = _thumbprint_hint(header)
    certificate = next((c for c in certificates if c.matches(header)), None)
    if certificate is None:
        raise errors.assertion_key_not_found(thumbprint, client_id)
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            certificate.public_key,  # type: ignore[arg-type]  # RSA, checked at load
            algorithms=[str(algorithm)],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise errors.assertion_bad_signature(thumbprint, certificate.validity()) from exc
    except jwt.InvalidTokenError as exc:
        raise errors.assertion_malformed(str(exc)) from exc

    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise errors.assertion_client_mismatch()
    audience = claims.get("aud")
    wanted = {_normalised(a) for a in audiences}
    named = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and _normalised(a) in wanted for a in named):
        raise errors.assertion_audience(str(audience))
    _check_lifetime(claims, now)


def _check_lifetime(claims: dict[str, Any], now: float) -> None:
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise errors.assertion_malformed("The 'exp' claim is missing or not a number.")
    starts = claims.get("nbf", claims.get("iat", 0))
    if not isinstance(starts, int | float) or isinstance(starts, bool):
        raise errors.assertion_malformed("The 'nbf' claim is not a number.")
    if starts - CLOCK_SKEW_SECONDS > now or expires + CLOCK_SKEW_SECONDS < now:
        raise errors.assertion_time_range(_moment(now), _moment(starts), _moment(expires))
