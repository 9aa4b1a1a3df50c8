"""HTTP basic authentication and client selection as the SAP ICF logon does them.

SAP user names are case-insensitive (stored upper-case), passwords are not. A failed logon answers
401 with the NetWeaver realm ``SAP NetWeaver Application Server [<SID>/<client>]``, which is what
clients and the IDoc adapter see from a real ECC.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from d365sap.emulators.settings import ErpEmulatorSettings

SYSTEM_ID = "ERP"
"""System id (SID) the emulated ECC reports in its realm."""


def realm(settings: ErpEmulatorSettings) -> str:
    """The basic-auth realm, e.g. ``SAP NetWeaver Application Server [ERP/001]``."""
    return f"SAP NetWeaver Application Server [{SYSTEM_ID}/{settings.sap_client}]"


def requested_client(request: Request, settings: ErpEmulatorSettings) -> str:
    """The logon client: ``sap-client`` query parameter, else header, else the default client."""
    return (
        request.query_params.get("sap-client")
        or request.headers.get("sap-client")
        or settings.sap_client
    ).strip()


def authenticated_user(authorization: str | None, settings: ErpEmulatorSettings) -> str | None:
    """The configured user the ``Authorization`` header proves, or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, separator, password = decoded.partition(":")
    if not separator:
        return None
    for user in settings.users:
        same_name = hmac.compare_digest(user.name.upper().encode(), name.upper().encode())
        same_password = hmac.compare_digest(
            user.password.get_secret_value().encode(), password.encode()
        )
        if same_name and same_password:
            return user.name.upper()
    return None


def logon_failed(settings: ErpEmulatorSettings, reason: str = "Logon failed") -> Response:
    """401 with the NetWeaver realm."""
    return PlainTextResponse(
        reason,
        status_code=401,
        headers={"WWW-Authenticate": f'Basic realm="{realm(settings)}"'},
    )
