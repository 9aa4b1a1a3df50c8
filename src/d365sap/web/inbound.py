"""The package-compatible inbound endpoint for customer messages.

``POST /http/CustomerSalesData_CRM_to_S4HC_ERP`` is the address SAP's package publishes, so a
Dynamics side built for it only changes the host (``/CustomerSalesData_CRM_to_S4HC_ERP`` works
too). The body is XML (``erpaccountdetails`` or ``erpaccounts``). The caller waits for the
outcome and gets the uniform JSON result.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from d365sap.engine.processor import Processor, new_correlation_id
from d365sap.web.auth import BasicAuthenticator
from d365sap.web.body import BodyTooLargeError, read_limited
from d365sap.web.errors import error_response

CUSTOMER_PATHS = ("/http/CustomerSalesData_CRM_to_S4HC_ERP", "/CustomerSalesData_CRM_to_S4HC_ERP")
XML_TYPES = ("application/xml", "text/xml")
SOURCE_ID_HEADERS = ("sapmessageid", "x-message-id")

router = APIRouter()


def _is_xml(content_type: str | None) -> bool:
    if not content_type:
        return True  # the package accepted untyped bodies; the parser decides
    media = content_type.split(";", 1)[0].strip().lower()
    return media in XML_TYPES or media.endswith("+xml")


def _source_id(request: Request) -> str | None:
    for header in SOURCE_ID_HEADERS:
        value = request.headers.get(header)
        if value and value.strip():
            return value.strip()[:200]
    return None


async def receive_customer(request: Request) -> Response:
    """Authenticate, bound and persist the message, process it, answer with the result."""
    state = request.app.state
    authenticator: BasicAuthenticator = state.authenticator
    failure = authenticator.check(request.headers.get("authorization"))
    if failure is not None:
        headers = {"WWW-Authenticate": 'Basic realm="d365sap"'} if failure.status == 401 else None
        return error_response(
            failure.status,
            "AuthenticationError",
            failure.message,
            field="Authorization",
            headers=headers,
        )
    content_type = request.headers.get("content-type")
    if not _is_xml(content_type):
        return error_response(
            415,
            "UnsupportedMediaType",
            f"expected an XML body, got {content_type!r}",
            field="Content-Type",
        )
    try:
        payload = await read_limited(request, state.settings.inbound.max_body_bytes)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")
    processor: Processor = state.processor
    correlation_id = request.headers.get("x-correlation-id") or new_correlation_id()
    processed = await processor.submit(
        "customer",
        payload,
        content_type=content_type or "application/xml",
        correlation_id=correlation_id,
        source_id=_source_id(request),
    )
    return JSONResponse(
        processed.body,
        status_code=processed.http_status,
        headers={"X-Message-Id": processed.message_id, "X-Correlation-Id": correlation_id},
    )


for _path in CUSTOMER_PATHS:
    router.add_api_route(_path, receive_customer, methods=["POST"], include_in_schema=True)
