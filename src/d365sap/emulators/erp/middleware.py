"""The single place between the network and the emulated ECC.

Every request passes :class:`FaultInjectionMiddleware` before it reaches a route. Fault injection
(error rates, latency, throttling, hanging requests, dropped connections, ERP lock errors) lives
here and nowhere else, so the routes stay the faithful ECC. Injected answers are what the IDoc
inbound service sends when the system, not the sender, is at fault: a SOAP fault with
``faultcode`` ``soap-env:Server`` and the WSDL's ``NoIdocsSaved`` exception (on the plain
endpoint its bare exception element), and nothing is saved.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from starlette.types import Scope

from d365sap.emulators.erp.faults import ExceptionName, IdocRejectedError
from d365sap.emulators.erp.inbound import PLAIN_PATH, SOAP_PATH, XML_MEDIA_TYPE
from d365sap.emulators.erp.soap import exception_element, soap_fault, to_bytes
from d365sap.emulators.faults import Fault, FaultKind, RequestFacts
from d365sap.emulators.faults_asgi import FaultedRequest, FaultMiddleware, Reply

LOCKING_USER = "BATCH_USER"
"""Who holds the lock in an injected lock error (SAP names the user in its lock messages)."""
_KUNNR = re.compile(rb"<KUNNR>\s*([^<\s]{1,10})\s*</KUNNR>")
_TEXTS: dict[int, str] = {
    500: "Internal error in IDoc inbound processing; no IDocs were saved",
    502: "Bad gateway: IDoc inbound processing did not answer correctly; no IDocs were saved",
    503: "The system is busy: no free work process for IDoc inbound processing; try again later",
    504: "Timeout: IDoc inbound processing did not answer in time",
}


def is_idoc_endpoint(path: str) -> bool:
    """The two inbound endpoints: what faults hit unless their ``paths`` say otherwise."""
    return path in (SOAP_PATH, PLAIN_PATH)


def locked_customer(body: bytes) -> str | None:
    """The customer number of the first IDoc in ``body``, in its external form, if visible.

    A quick look is enough for a message text: an IDoc base64-encoded in ``XmlStream`` shows
    none, and the lock message then speaks of the customer master in general.
    """
    found = _KUNNR.search(body)
    if found is None:
        return None
    number = found.group(1).decode("utf-8", "replace")
    return number.lstrip("0") or number if number.isdigit() else number


def _text(fault: Fault, body: bytes) -> tuple[int, str]:
    if fault.kind is FaultKind.LOCK:
        customer = locked_customer(body)
        what = f"Customer {customer}" if customer else "The customer master"
        return 500, f"{what} is currently being processed by user {LOCKING_USER}"
    if fault.kind is FaultKind.RETRY_AFTER:
        seconds = fault.retry_after_seconds
        return 503, f"The system is busy; try again in {seconds} seconds"
    status = 504 if fault.kind is FaultKind.TIMEOUT else fault.status
    return status, _TEXTS.get(status, _phrase(status))


def _phrase(status: int) -> str:
    try:
        return f"{HTTPStatus(status).phrase}; no IDocs were saved"
    except ValueError:
        return f"HTTP {status}; no IDocs were saved"


class FaultInjectionMiddleware(FaultMiddleware):
    """Pure ASGI middleware wrapping the whole emulator; passes through unless a fault is due."""

    def describe(self, scope: Scope) -> RequestFacts:
        """Every IDoc delivery is a POST, and every POST writes."""
        method = scope["method"].upper()
        return RequestFacts(method=method, path=scope["path"], modifying=method == "POST")

    def reply(self, fault: Fault, request: FaultedRequest) -> Reply:
        """A Server fault: SOAP envelope on the SOAP endpoint, the exception element elsewhere."""
        status, text = _text(fault, request.body)
        rejection = IdocRejectedError(
            ExceptionName.NO_IDOCS_SAVED, [text], faultcode="Server", plain_status=status
        )
        headers = [("content-type", XML_MEDIA_TYPE)]
        if fault.kind is FaultKind.RETRY_AFTER:
            headers.append(("retry-after", str(fault.retry_after_seconds)))
        if request.path == PLAIN_PATH:
            return Reply(status, headers, to_bytes(exception_element(rejection)))
        return Reply(status, headers, soap_fault(rejection))
