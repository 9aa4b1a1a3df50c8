"""SAP Gateway's OData v2 error replies, and the catalogue of the ones the emulator gives.

Clients (and our own connector) read ``error.code``, ``error.message.value`` and
``innererror.errordetails[].propertyref``, so every rejection goes through :class:`ODataError`
and :func:`error_body`, which reproduce the shape of S/4HANA Cloud's replies: the application
block of the service (API_BUSINESS_PARTNER unless told otherwise), a transaction id, a Gateway
timestamp, the error-resolution hints and at least one ``errordetails`` entry.

Codes taken from public captures of real systems: ``/IWBEP/CM_MGW_RT/020`` (resource not found),
``/IWBEP/CM_MGW_RT/190`` (ETag precondition), the GUID code of "system query options not
allowed". The other codes follow SAP's ``MSGID/MSGNO`` shape but are this emulator's choice.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

APPLICATION = {
    "component_id": "LO-MD-BP",
    "service_namespace": "/SAP/",
    "service_id": "API_BUSINESS_PARTNER",
    "service_version": "0001",
}
_RESOLUTION = {
    "SAP_Transaction": (
        "For backend administrators: run transaction /IWFND/ERROR_LOG on the SAP Gateway hub "
        "system and search for entries with the timestamp above for more details"
    ),
    "SAP_Note": (
        "See SAP Note 1797736 for error analysis "
        "(https://service.sap.com/sap/support/notes/1797736)"
    ),
}
_BATCH_NOTE = (
    "See SAP Note 1869434 for details about working with $batch "
    "(https://service.sap.com/sap/support/notes/1869434)"
)

# code                                               when
NOT_FOUND = "/IWBEP/CM_MGW_RT/020"  # unknown entity set, key or navigation target
PRECONDITION_FAILED = "/IWBEP/CM_MGW_RT/190"  # If-Match does not match the ETag
QUERY_OPTIONS_NOT_ALLOWED = "005056A509B11EE1B9A8FEC11C23378E"  # $top & co. on a single entity
METHOD_NOT_ALLOWED = "/IWBEP/CM_MGW_RT/021"  # entity set not creatable/updatable/deletable
URI_SYNTAX = "/IWBEP/CM_MGW_RT/005"  # bad key predicate, resource path or query option
FILTER_INVALID = "/IWBEP/CM_MGW_RT/006"  # $filter syntax, unknown property or type clash
MALFORMED_BODY = "/IWBEP/CM_MGW_RT/004"  # payload is not (an object of) JSON
INVALID_PROPERTY = "/IWBEP/CM_MGW_RT/007"  # unknown property in a payload
INVALID_VALUE = "/IWBEP/CM_MGW_RT/008"  # wrong type, too long, null where not nullable
KEY_MISSING = "/IWBEP/CM_MGW_RT/009"  # key property absent in a create
NOT_CHANGEABLE = "/IWBEP/CM_MGW_RT/010"  # sap:creatable / sap:updatable false, key change
UNSUPPORTED_MEDIA = "/IWBEP/CM_MGW_RT/011"  # request or response format other than JSON
PAYLOAD_TOO_LARGE = "/IWBEP/CM_MGW_RT/012"  # body over max_body_bytes
BATCH_INVALID = "/IWBEP/CM_MGW_RT/013"  # $batch body that cannot be parsed
CUSTOMER_MISSING = "F2/502"  # owner of a sales area / company row does not exist
OWNER_MISSING = "CVI_EI/053"  # any other owner (business partner, sales area) missing
ALREADY_EXISTS = "CVI_EI/054"  # create meets an existing key
BP_CATEGORY = "R11/401"  # business partner without a valid category
INTERNAL_ERROR = "/IWBEP/CM_MGW_RT/000"  # a bug in the emulator itself (500)


@dataclass(frozen=True, slots=True)
class Detail:
    """One ``errordetails`` entry."""

    code: str
    message: str
    propertyref: str = ""
    target: str = ""
    severity: str = "error"


class ODataError(Exception):
    """A rejection with SAP's status, code and message; raised anywhere, rendered once."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Detail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def property_error(status: int, code: str, message: str, prop: str, target: str = "") -> ODataError:
    """An error about one property: the property is named in ``propertyref`` and ``target``."""
    return ODataError(status, code, message, [Detail(code, message, prop, target or prop)])


def not_found(segment: str) -> ODataError:
    """SAP's 404 for a segment that resolves to nothing."""
    return ODataError(404, NOT_FOUND, f"Resource not found for segment '{segment}'")


def gateway_timestamp(now: datetime | None = None) -> str:
    """``20261127090000.1234560``: Gateway's timestamp format (UTC)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S") + f".{moment.microsecond:06d}0"


def error_body(
    error: ODataError, *, in_batch: bool = False, application: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document of ``error``; ``application`` names the service (default the BP API)."""
    details = error.details or [Detail("/IWBEP/CX_MGW_BUSI_EXCEPTION", error.message)]
    resolution = dict(_RESOLUTION)
    if in_batch:
        resolution["Batch_SAP_Note"] = _BATCH_NOTE
    return {
        "error": {
            "code": error.code,
            "message": {"lang": "en", "value": error.message},
            "innererror": {
                "application": dict(APPLICATION if application is None else application),
                "transactionid": secrets.token_hex(16).upper(),
                "timestamp": gateway_timestamp(),
                "Error_Resolution": resolution,
                "errordetails": [
                    {
                        "code": d.code,
                        "message": d.message,
                        "propertyref": d.propertyref,
                        "severity": d.severity,
                        "target": d.target,
                        "transition": False,
                    }
                    for d in details
                ],
            },
        }
    }


def error_bytes(
    error: ODataError, *, in_batch: bool = False, application: Mapping[str, Any] | None = None
) -> bytes:
    """:func:`error_body` serialised as UTF-8 JSON."""
    body = error_body(error, in_batch=in_batch, application=application)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
