"""Refusals of the emulated Entra ID token endpoint, in Entra's own error format.

msal and every other client read ``error`` (the OAuth 2.0 code) and show ``error_description``,
which starts with the ``AADSTS<code>:`` message and ends with trace id, correlation id and
timestamp, exactly as the real service writes them. The correlation id is the caller's
``client-request-id`` when it sent one (msal does), so a test can find its own request.

Codes and messages marked "captured" below were taken from real Entra responses; the others
follow Entra's shape, but their code or wording is this emulator's choice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

ERROR_URI = "https://login.microsoftonline.com/error?code={code}"


class EntraError(Exception):
    """One refusal of the token or discovery endpoint."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def body(
        self, correlation_id: str | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        """The JSON document Entra answers with."""
        moment = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation = correlation_id if _is_guid(correlation_id) else str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
                f"Correlation ID: {correlation} Timestamp: {moment}"
            ),
            "error_codes": [self.code],
            "timestamp": moment,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": ERROR_URI.format(code=self.code),
        }


def _is_guid(value: str | None) -> bool:
    if not value:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# Tenant ------------------------------------------------------------------------------------


def tenant_not_found(tenant: str, *, discovery: bool = False) -> EntraError:
    """Captured: 400, ``invalid_tenant`` on discovery and ``invalid_request`` on the token call."""
    return EntraError(
        400,
        "invalid_tenant" if discovery else "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def tenant_identifier_invalid(tenant: str) -> EntraError:
    """Captured: a tenant that is neither a GUID nor a DNS name."""
    return EntraError(
        400,
        "invalid_request",
        900023,
        f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid "
        "external domain.",
    )


def no_tenant_for_app_only() -> EntraError:
    """Captured: client credentials sent to ``/common`` or ``/organizations``."""
    return EntraError(
        400,
        "invalid_request",
        50059,
        "No tenant-identifying information found in either the request or implied by any "
        "provided credentials.",
    )


# Request shape -----------------------------------------------------------------------------


def missing_parameter(name: str) -> EntraError:
    """Captured wording (AADSTS900144)."""
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def duplicated_parameter(name: str) -> EntraError:
    """Captured wording (AADSTS9000411)."""
    return EntraError(
        400,
        "invalid_request",
        9000411,
        f"The request is not properly formatted. The parameter '{name}' is duplicated.",
    )


def unsupported_grant(grant_type: str) -> EntraError:
    """Code captured (AADSTS70003, ``unsupported_grant_type``); wording the emulator's."""
    return EntraError(
        400,
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def both_credentials() -> EntraError:
    """Emulator's choice: a secret and an assertion in one request."""
    return EntraError(
        400,
        "invalid_request",
        9000411,
        "The request is not properly formatted. The parameters 'client_secret' and "
        "'client_assertion' cannot be used together.",
    )


# Client ------------------------------------------------------------------------------------


def unknown_client(client_id: str, directory: str) -> EntraError:
    """Captured: 400 ``unauthorized_client`` (AADSTS700016)."""
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{directory}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You may have "
        "sent your authentication request to the wrong tenant.",
    )


def missing_credential() -> EntraError:
    """Captured wording (AADSTS7000216), 401 ``invalid_client``."""
    return EntraError(
        401,
        "invalid_client",
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type.",
    )


def invalid_secret(client_id: str) -> EntraError:
    """Captured: 401 ``invalid_client`` (AADSTS7000215)."""
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
    )


def assertion_type_invalid(value: str) -> EntraError:
    """Emulator's wording: ``client_assertion_type`` other than the JWT bearer type."""
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: 'client_assertion_type' "
        f"with the value 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' (got '{value}').",
    )


def assertion_malformed(reason: str) -> EntraError:
    """Code captured (AADSTS50027); the reason is the emulator's."""
    return EntraError(
        400, "invalid_request", 50027, f"JWT token is invalid or malformed. [Reason - {reason}]"
    )


def assertion_key_not_found(thumbprint: str, client_id: str) -> EntraError:
    """Captured shape (AADSTS700027): no registered certificate has the thumbprint."""
    return EntraError(
        401,
        "invalid_client",
        700027,
        "Client assertion contains an invalid signature. [Reason - The key was not found., "
        f"Thumbprint of key used by client: '{thumbprint}', Please visit the app registration "
        f"of app Id '{client_id}' to see configured keys]",
    )


def assertion_bad_signature(thumbprint: str, found: str) -> EntraError:
    """Captured shape (AADSTS700027): the signature does not verify with the certificate."""
    return EntraError(
        401,
        "invalid_client",
        700027,
        "Client assertion contains an invalid signature. [Reason - The provided signature value "
        f"did not match the expected signature value., Thumbprint of key used by client: "
        f"'{thumbprint}', Found key '{found}']",
    )


def assertion_time_range(now: str, valid_from: str, expires: str) -> EntraError:
    """Captured shape (AADSTS700024)."""
    return EntraError(
        401,
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {now}, assertion "
        f"valid from {valid_from}, expiry time of assertion {expires}.",
    )


def assertion_audience(audience: str) -> EntraError:
    """Captured wording of the older service (AADSTS50012); the audience is added."""
    return EntraError(
        401,
        "invalid_client",
        50012,
        f"Client assertion audience claim does not match Realm issuer. Audience: '{audience}'.",
    )


def assertion_client_mismatch() -> EntraError:
    """Captured wording (AADSTS700021)."""
    return EntraError(
        401,
        "invalid_client",
        700021,
        "Client assertion application identifier doesn't match 'client_id' parameter.",
    )


# Scope -------------------------------------------------------------------------------------


def scope_not_default(scope: str) -> EntraError:
    """Captured: 400 ``invalid_scope`` (AADSTS1002012)."""
    return EntraError(
        400,
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have "
        "a scope value with /.default suffixed to the resource identifier (application ID URI).",
    )


def unknown_resource(resource: str, directory: str) -> EntraError:
    """Captured wording (AADSTS500011), ``invalid_resource``."""
    return EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named "
        f"{directory}. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You might have "
        "sent your authentication request to the wrong tenant.",
    )
