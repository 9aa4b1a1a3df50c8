"""The two IDoc inbound endpoints: SOAP ``/sap/bc/srt/idoc`` and plain ``/sap/bc/idoc_xml``.

A request passes the checks in the order an ECC does them: logon client, basic authentication,
content type, size, XML well-formedness (hardened parser), envelope, DEBMAS07 schema per IDoc, and
the inbound partner profile. Any failure refuses the whole document (nothing is saved, no number
is drawn). An accepted document is stored and posted at once; application errors there end in
status 51 and do not change the answer, which only confirms receipt, as in ECC.

``application/x-sap.idoc`` is the exactly-once variant: the ``SapMessageId`` header (32 hex digits
or a GUID, generated when absent) identifies the message and a repeat returns the first numbers.
``text/xml`` has no such guarantee: every delivery creates new IDocs.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from fastapi import APIRouter
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from d365sap.emulators.erp.auth import authenticated_user, logon_failed, requested_client
from d365sap.emulators.erp.faults import ExceptionName, IdocRejectedError
from d365sap.emulators.erp.idoc import ReceivedIdoc, idoc_elements, read_idoc
from d365sap.emulators.erp.profile import accepted_root_names, partner_profile_problems
from d365sap.emulators.erp.schema import BASIC_TYPE, DebmasSchema
from d365sap.emulators.erp.soap import (
    assign_element,
    exception_element,
    soap_fault,
    soap_response,
    to_bytes,
    unwrap_request,
)
from d365sap.emulators.erp.state import Delivery, ErpState, Receipt
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.errors import ValidationError
from d365sap.xmlsafe import parse_xml

SOAP_PATH = "/sap/bc/srt/idoc"
PLAIN_PATH = "/sap/bc/idoc_xml"
TEXT_XML = "text/xml"
SAP_IDOC = "application/x-sap.idoc"
XML_MEDIA_TYPE = "text/xml; charset=utf-8"
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")


class _BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True)
class _Request:
    """What the HTTP layer hands to the (thread-pool) processing."""

    body: bytes
    content_type: str
    endpoint: str
    message_id: str | None


def normalise_message_id(value: str) -> str:
    """A ``SapMessageId`` as 32 upper-case hex digits; IdocRejectedError when malformed."""
    text = value.strip()
    if _HEX32.match(text) or _GUID.match(text):
        return text.replace("-", "").upper()
    raise IdocRejectedError(
        ExceptionName.TAG_ERROR,
        [f"SapMessageId: '{text[:64]}' is not a message id (32 hex digits or a GUID)"],
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


class InboundService:
    """Turns one HTTP request into an IdocAssign answer or a refusal."""

    def __init__(
        self, settings: ErpEmulatorSettings, schema: DebmasSchema, state: ErpState
    ) -> None:
        self._settings = settings
        self._schema = schema
        self._state = state
        self._roots = accepted_root_names(settings)
        self._segment_names = frozenset(schema.segments)

    async def handle(self, request: Request, *, soap: bool) -> Response:
        """Check, read and process one request on the SOAP (``soap=True``) or plain endpoint."""
        client = requested_client(request, self._settings)
        if client != self._settings.sap_client:
            reason = f"Logon failed: client {client[:3]} is not available in this system"
            if soap:
                return self._refusal(IdocRejectedError(ExceptionName.NO_AUTHORITY, [reason]), soap)
            return logon_failed(self._settings, reason)
        if authenticated_user(request.headers.get("authorization"), self._settings) is None:
            return logon_failed(self._settings)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in (TEXT_XML, SAP_IDOC):
            return PlainTextResponse(
                f"Unsupported content type '{media_type}': send {TEXT_XML} or {SAP_IDOC}",
                status_code=415,
            )
        raw_id = request.headers.get("sapmessageid")
        message_id: str | None = None
        try:
            if media_type == SAP_IDOC:
                message_id = normalise_message_id(raw_id) if raw_id else uuid.uuid4().hex.upper()
            elif raw_id:
                message_id = raw_id.strip()[:64]
            body = await _read_body(request, self._settings.max_body_bytes)
            incoming = _Request(body, media_type, request.url.path, message_id)
            receipt = await run_in_threadpool(self._process, incoming)
        except _BodyTooLargeError:
            return PlainTextResponse(
                f"Request body exceeds {self._settings.max_body_bytes} bytes", status_code=413
            )
        except IdocRejectedError as rejection:
            return self._refusal(rejection, soap)
        return self._answer(receipt, message_id, soap)

    def _process(self, incoming: _Request) -> Receipt:
        try:
            delivery = Delivery(
                idocs=tuple(self._read(incoming.body)),
                content_type=incoming.content_type,
                endpoint=incoming.endpoint,
                message_id=incoming.message_id,
                exactly_once=incoming.content_type == SAP_IDOC,
            )
            return self._state.receive(delivery)
        except IdocRejectedError:
            raise
        except Exception as exc:  # the sender must get a fault, never a bare 500 page
            raise IdocRejectedError(
                ExceptionName.NO_IDOCS_SAVED,
                [f"IDoc inbound failed: {type(exc).__name__}: {exc}"],
                faultcode="Server",
                plain_status=500,
            ) from exc

    def _read(self, body: bytes) -> list[ReceivedIdoc]:
        """Parse, unwrap and check a document; IdocRejectedError lists every problem found."""
        if not body.strip():
            raise IdocRejectedError(ExceptionName.NO_DATA_RECEIVED, ["Request body is empty"])
        try:
            root = parse_xml(body, what="IDoc XML")
        except ValidationError as exc:
            raise IdocRejectedError(ExceptionName.TAG_ERROR, [exc.message]) from exc
        document = unwrap_request(root)
        elements = idoc_elements(document, accepted_roots=self._roots)
        root_name = etree.QName(document).localname
        several = len(elements) > 1
        problems: list[str] = []
        idocs: list[ReceivedIdoc] = []
        profile_problems: list[str] = []
        for position, element in enumerate(elements, start=1):
            prefix = f"IDOC {position}: " if several else ""
            found = self._schema.validate_idoc(element)
            problems += [prefix + p for p in found]
            if found:
                continue
            idoc = read_idoc(element, root_name=root_name, segment_names=self._segment_names)
            profile_problems += [
                prefix + p for p in partner_profile_problems(idoc.control, self._settings)
            ]
            idocs.append(idoc)
        if problems:
            raise IdocRejectedError(ExceptionName.TAG_ERROR, problems + profile_problems)
        if profile_problems:
            raise IdocRejectedError(ExceptionName.NO_IDOCS_SAVED, profile_problems)
        return idocs

    def _answer(self, receipt: Receipt, message_id: str | None, soap: bool) -> Response:
        pairs = [(a.transfer_id, a.docnum) for a in receipt.assignments]
        body = soap_response(pairs) if soap else to_bytes(assign_element(pairs))
        headers = {"SapIDocType": BASIC_TYPE}
        if pairs:
            headers["SapIDocDbId"] = pairs[0][1]
            if pairs[0][0]:
                headers["SapIDocTransferId"] = pairs[0][0]
        if message_id:
            headers["SapMessageId"] = message_id
        return Response(body, status_code=200, media_type=XML_MEDIA_TYPE, headers=headers)

    @staticmethod
    def _refusal(rejection: IdocRejectedError, soap: bool) -> Response:
        if soap:
            return Response(soap_fault(rejection), status_code=500, media_type=XML_MEDIA_TYPE)
        body = to_bytes(exception_element(rejection))
        return Response(body, status_code=rejection.plain_status, media_type=XML_MEDIA_TYPE)


def inbound_router(service: InboundService) -> APIRouter:
    """Routes of both inbound endpoints (query parameter ``sap-client`` optional)."""
    router = APIRouter()

    @router.post(SOAP_PATH, include_in_schema=False)
    async def idoc_soap(request: Request) -> Response:
        return await service.handle(request, soap=True)

    @router.post(PLAIN_PATH, include_in_schema=False)
    async def idoc_xml(request: Request) -> Response:
        return await service.handle(request, soap=False)

    return router
