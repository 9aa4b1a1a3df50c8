"""``POST /sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in``: the SOAP endpoint.

The checks run in the order SAP's stack runs them. The ICF logon first: a wrong ``sap-client``
or wrong credentials get 401 with the NetWeaver realm and an HTML page, as on every S/4 URL.
Then the SOAP runtime: the media type decides the SOAP version (others: 415), the body limit
applies (413), a logged-on user who is not a communication user of the arrangement gets SAP's
"Authorization missing" fault, the envelope is read, the body must carry
``{http://sap.com/xi/SD-SLS}SalesOrderBulkRequest`` and that must be valid against the
project's schema. Any refusal is a SOAP fault with HTTP 500 whose string ends with SAP's
pointer to the provider-side error log, where the transaction id leads to every problem found.
An accepted message is answered 202 with an empty body; its orders are processed afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from d365sap.emulators.s4.sales_orders.error_log import (
    ErrorLogEntry,
    WebServiceErrorLog,
    excerpt,
    new_transaction,
    provider_side,
)
from d365sap.emulators.s4.sales_orders.inbound import SalesOrderInbound
from d365sap.emulators.s4.sales_orders.message import BulkRequest, read_bulk_request
from d365sap.emulators.s4.sales_orders.schema import MESSAGE_NS, ROOT_ELEMENT, SalesOrderSchema
from d365sap.emulators.s4.sales_orders.soap import (
    Fault,
    FaultCode,
    SoapFaultError,
    SoapVersion,
    fault_bytes,
    read_envelope,
)
from d365sap.emulators.settings import EmulatorUser, S4EmulatorSettings

log = logging.getLogger(__name__)

SOAP_PATH = "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in"
SERVICE_NAME = "SalesOrderBulkRequest_In"
TRANSFORMATION_NS = "http://www.sap.com/transformation-templates"
_LOGON_FAILED = b"<html><head><title>Logon Error</title></head><body>Logon failed</body></html>"


class _BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True)
class _Refusal:
    """A fault and the problems it stands for (what the error log keeps)."""

    fault: Fault
    problems: list[str]


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, separator, password = decoded.partition(":")
    return (name, password) if separator else None


def _matching(users: list[EmulatorUser], name: str, password: str) -> str | None:
    for user in users:
        same_name = hmac.compare_digest(user.name.upper().encode(), name.upper().encode())
        same_password = hmac.compare_digest(
            user.password.get_secret_value().encode(), password.encode()
        )
        if same_name and same_password:
            return user.name.upper()
    return None


def _schema_detail(problems: list[str], line: int) -> etree._Element:
    """The fault detail of a schema refusal, modelled on SAP's simple-transformation fault."""
    detail = etree.Element(
        etree.QName(TRANSFORMATION_NS, "SimpleTransformationFault"), nsmap={"n0": TRANSFORMATION_NS}
    )
    etree.SubElement(detail, "MainName").text = SERVICE_NAME
    etree.SubElement(detail, "ProgName").text = "SalesOrderBulkRequest_In.xsd"
    etree.SubElement(detail, "Line").text = str(line)
    etree.SubElement(detail, "Valid").text = "X"
    for problem in problems:
        etree.SubElement(detail, "ReasonText").text = problem
    return detail


class SalesOrderEndpoint:
    """Turns one HTTP request into 202 or a refusal."""

    def __init__(
        self,
        settings: S4EmulatorSettings,
        schema: SalesOrderSchema,
        inbound: SalesOrderInbound,
        error_log: WebServiceErrorLog,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.inbound = inbound
        self.error_log = error_log

    def _logon_failed(self) -> Response:
        sid, client = self.settings.sap_system_id, self.settings.sap_client
        realm = f'Basic realm="SAP NetWeaver Application Server [{sid}/{client}]"'
        return Response(
            _LOGON_FAILED,
            status_code=401,
            media_type="text/html",
            headers={"www-authenticate": realm},
        )

    def _logon(self, request: Request) -> str | None:
        client = request.query_params.get("sap-client") or request.headers.get("sap-client")
        if client is not None and client.strip() != self.settings.sap_client:
            return None
        credentials = _basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            return None
        users = list(self.settings.users) + list(self.settings.sales_orders.users or [])
        return _matching(users, *credentials)

    def _authorized(self, user: str) -> bool:
        allowed = self.settings.sales_orders.users
        return allowed is None or any(u.name.upper() == user for u in allowed)

    async def handle(self, request: Request) -> Response:
        """Answer one request on the endpoint (the route's handler)."""
        if request.method != "POST":
            return PlainTextResponse(
                f"Method {request.method} is not allowed; POST a SOAP message",
                status_code=405,
                headers={"allow": "POST"},
            )
        user = self._logon(request)
        if user is None:
            return self._logon_failed()
        content_type = request.headers.get("content-type", "")
        version = SoapVersion.of_media_type(content_type)
        if version is None:
            return PlainTextResponse(
                f"Unsupported content type '{content_type.split(';')[0].strip()}': send "
                "text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)",
                status_code=415,
            )
        try:
            body = await self._body(request)
        except _BodyTooLargeError:
            limit = self.settings.max_body_bytes
            return PlainTextResponse(f"Request body exceeds {limit} bytes", status_code=413)
        if not self._authorized(user):
            text = (
                f'Authorization missing for service "{MESSAGE_NS} {SERVICE_NAME}", '
                f'operation "{SERVICE_NAME}"'
            )
            refusal = _Refusal(Fault(FaultCode.SERVER, text), [f"user {user}: {text}"])
            return self._refuse(refusal, version, user, body)
        try:
            bulk = await run_in_threadpool(self._read, body, version)
        except SoapFaultError as failure:
            return self._refuse(_Refusal(failure.fault, failure.problems), version, user, body)
        except Exception:
            log.exception("SalesOrderBulkRequest_In failed")
            fault = Fault(FaultCode.SERVER, "Web service processing error")
            return self._refuse(_Refusal(fault, [fault.text]), version, user, body)
        self.inbound.accept(bulk, body, user, version)
        return Response(status_code=202)

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _BodyTooLargeError
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _BodyTooLargeError
            chunks.append(chunk)
        return b"".join(chunks)

    def _read(self, body: bytes, version: SoapVersion) -> BulkRequest:
        payload = read_envelope(body, version)
        expected = etree.QName(MESSAGE_NS, ROOT_ELEMENT)
        if etree.QName(payload) != expected:
            raise SoapFaultError(
                Fault(
                    FaultCode.CLIENT,
                    f"Operation for {payload.tag} is not part of service {SERVICE_NAME} "
                    f"(expected {expected.text})",
                )
            )
        problems = self.schema.problems(payload)
        if problems:
            texts = [str(problem) for problem in problems]
            more = f" (and {len(texts) - 1} more)" if len(texts) > 1 else ""
            fault = Fault(
                FaultCode.CLIENT,
                f"Request message is not valid against the schema of {SERVICE_NAME}: "
                f"{texts[0]}{more}",
                [_schema_detail(texts, problems[0].line)],
            )
            raise SoapFaultError(fault, texts)
        return read_bulk_request(payload)

    def _refuse(
        self, refusal: _Refusal, version: SoapVersion, user: str | None, body: bytes
    ) -> Response:
        transaction_id, at = new_transaction()
        fault = refusal.fault
        text = provider_side(fault.text, transaction_id, at)
        self.error_log.record(
            ErrorLogEntry(
                transaction_id=transaction_id,
                at=at,
                user=user,
                soap_version=version.value,
                fault_code=fault.code.written(version),
                fault_string=text,
                problems=tuple(refusal.problems),
                body=excerpt(body),
            )
        )
        answer = fault_bytes(version, Fault(fault.code, text, fault.detail))
        media = f"{version.media_type}; charset=utf-8"
        return Response(answer, status_code=500, media_type=media)
