"""Fault injection in front of the S/4 services, answered the way S/4HANA Cloud answers.

Errors, throttling (429 with ``Retry-After``) and gateway timeouts come as SAP Gateway's JSON
error body on the OData services, so d365sap's connector reads them exactly as it reads S/4's
own rejections, and as a SOAP fault (``Server``, in the request's SOAP version) on the SOAP
endpoint. The
codes below are this emulator's choice in SAP's ``MSGID/MSGNO`` shape; clients should act on the
status, as they would against a real system.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import Scope

from d365sap.emulators.faults import Fault as InjectedFault
from d365sap.emulators.faults import FaultKind, RequestFacts
from d365sap.emulators.faults_asgi import FaultedRequest, FaultMiddleware, Reply, header_map
from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.gate import effective_method
from d365sap.emulators.s4.messages import JSON_TYPE, MODIFYING
from d365sap.emulators.s4.sales_orders.soap import (
    Fault,
    FaultCode,
    fault_bytes,
    version_of_body,
)
from d365sap.emulators.s4.services import service_for
from d365sap.emulators.s4.state import SOAP_PATHS

_CONDITIONAL = frozenset({"PATCH", "MERGE", "PUT", "DELETE"})
# status -> (code, message); anything else gets _OTHER with the status' reason phrase
_ERRORS: dict[int, tuple[str, str]] = {
    500: ("/IWBEP/CM_MGW_RT/014", "Internal server error in the back end; try again later"),
    502: ("/IWBEP/CM_MGW_RT/015", "Bad gateway: the back end did not answer correctly"),
    503: (
        "/IWBEP/CM_MGW_RT/016",
        "Service unavailable: all work processes are busy; try again later",
    ),
    504: ("/IWBEP/CM_MGW_RT/017", "Gateway timeout: the back end did not answer in time"),
}
_THROTTLED = "/IWBEP/CM_MGW_RT/018"
_OTHER = "/IWBEP/CM_MGW_RT/019"


def _odata_reply(path: str, status: int, code: str, message: str, headers: dict[str, str]) -> Reply:
    spec = service_for(path)
    application = spec.application if spec is not None else None
    body = errors.error_bytes(errors.ODataError(status, code, message), application=application)
    fixed = {"content-type": JSON_TYPE, "dataserviceversion": "2.0", "sap-server": "true"}
    return Reply(status, list({**fixed, **headers}.items()), body)


class S4FaultMiddleware(FaultMiddleware):
    """Outermost middleware of the S/4 emulator (in front of the gate)."""

    def describe(self, scope: Scope) -> RequestFacts:
        """Effective method (``X-HTTP-Method`` tunnelling), write, conditional write."""
        headers = header_map(scope)
        method = effective_method(scope["method"], headers)
        if_match = headers.get("if-match", "").strip()
        return RequestFacts(
            method=method,
            path=scope["path"],
            modifying=method in MODIFYING,
            conditional=method in _CONDITIONAL and bool(if_match) and if_match != "*",
        )

    def reply(self, fault: InjectedFault, request: FaultedRequest) -> Reply:
        """SAP Gateway's error body (or a SOAP fault) with the status of the fault."""
        headers: dict[str, str] = {}
        if fault.kind is FaultKind.RETRY_AFTER:
            seconds = fault.retry_after_seconds
            status, code = 429, _THROTTLED
            message = f"Too many requests; retry after {seconds} seconds"
            headers["retry-after"] = str(seconds)
        else:
            status = 504 if fault.kind is FaultKind.TIMEOUT else fault.status
            code, message = _ERRORS.get(status, (_OTHER, _phrase(status)))
        if request.path in SOAP_PATHS:
            return _soap_reply(request, status, message, headers)
        return _odata_reply(request.path, status, code, message, headers)


def _soap_reply(
    request: FaultedRequest, status: int, message: str, headers: dict[str, str]
) -> Reply:
    version = version_of_body(request.body)
    body = fault_bytes(version, Fault(FaultCode.SERVER, message))
    fixed = {"content-type": f"{version.media_type}; charset=utf-8", "sap-server": "true"}
    return Reply(status, list({**fixed, **headers}.items()), body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
