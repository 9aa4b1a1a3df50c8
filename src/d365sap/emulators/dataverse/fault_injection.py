"""Fault injection in front of the Web API, answered the way Dataverse answers.

Errors come in Dataverse's error body (``{"error": {"code", "message"}}``), throttling as the
service-protection 429 with ``Retry-After`` and the documented "Number of requests exceeded"
error, so a client reads an injected fault exactly as a real one. The codes of injected 5xx
errors are this emulator's choice (``0x80040216`` is Dataverse's generic "unexpected error");
clients should act on the status. An ETag change is carried out by the environment itself
(the row gets a new version before the conditional write reaches it).
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.types import Scope

from d365sap.emulators.dataverse.messages import MODIFYING, WebApiResponse
from d365sap.emulators.faults import Fault, FaultKind, RequestFacts
from d365sap.emulators.faults_asgi import FaultedRequest, FaultMiddleware, Reply, header_map

_CONDITIONAL = frozenset({"PATCH", "PUT", "DELETE"})
UNEXPECTED = "0x80040216"
THROTTLED = "0x80072322"
_MESSAGES: dict[int, tuple[str, str]] = {
    500: (UNEXPECTED, "An unexpected error occurred."),
    502: ("", "Bad gateway: the environment did not answer correctly."),
    503: ("", "The service is temporarily unavailable; try again later."),
    504: ("", "The environment did not answer in time."),
}


def _reply(response: WebApiResponse) -> Reply:
    return Reply(response.status, list(response.headers.items()), response.body)


class DataverseFaultMiddleware(FaultMiddleware):
    """Outermost middleware of the Dataverse emulator."""

    def describe(self, scope: Scope) -> RequestFacts:
        """Method, write, conditional write (``If-Match`` naming a version)."""
        headers = header_map(scope)
        method = scope["method"]
        if_match = headers.get("if-match", "").strip()
        return RequestFacts(
            method=method,
            path=scope["path"],
            modifying=method in MODIFYING,
            conditional=method in _CONDITIONAL and bool(if_match) and if_match != "*",
        )

    def reply(self, fault: Fault, request: FaultedRequest) -> Reply:
        """Dataverse's error body with the status of the fault."""
        if fault.kind is FaultKind.RETRY_AFTER:
            seconds = fault.retry_after_seconds
            message = (
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
            )
            headers = {"retry-after": str(seconds)}
            return _reply(WebApiResponse.error(429, THROTTLED, message, headers))
        status = 504 if fault.kind is FaultKind.TIMEOUT else fault.status
        code, message = _MESSAGES.get(status, ("", _phrase(status)))
        return _reply(WebApiResponse.error(status, code, message))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
