"""Client for S/4HANA Cloud's asynchronous SOAP service SalesOrderBulkRequest_In (SAP_COM_0288).

The service is "A2A": S/4 acknowledges receipt of a bulk message (HTTP 202, empty body) and
creates the orders afterwards; the outcome comes later, as a confirmation or in
API_SALES_ORDER_SRV. The client posts the ``SalesOrderBulkRequest`` in a SOAP 1.1 envelope with
basic authentication and turns every refusal into d365sap's error tree, keeping S/4's text:

- a ``Client`` fault (schema violation, an envelope S/4 cannot read), ``VersionMismatch`` and
  ``MustUnderstand`` are permanent: sending the same request again fails the same way;
- a ``Server`` fault that says the user lacks the arrangement's authorization is permanent too
  (status 403: d365sap's credentials, not the caller's fault); other ``Server`` faults are
  S/4 failing, so transient;
- anything else goes through :func:`~d365sap.connectors.base.classify_status`: 429/5xx
  transient (``Retry-After`` kept), 401 and other 4xx permanent; timeouts and dropped
  connections transient.

A message S/4 accepted once is acknowledged again but not processed again when its
``MessageHeader/ID`` repeats, so the caller keeps that id stable across retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2
from lxml import etree

from d365sap.connectors.base import (
    ConnectorClient,
    classify_status,
    client_kwargs,
    transport_error,
)
from d365sap.errors import PermanentError, TransientError, ValidationError
from d365sap.xmlsafe import local_name, parse_xml

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ACTION = '"http://sap.com/xi/SD-SLS/SalesOrderBulkRequest_In"'
CONTENT_TYPE = "text/xml; charset=utf-8"
_AUTHORIZATION = "authorization missing"
_ENVELOPE_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="{SOAP11_ENV}">'
    "<soap-env:Header/><soap-env:Body>"
).encode()
_ENVELOPE_TAIL = b"</soap-env:Body></soap-env:Envelope>"


def soap_envelope(request: bytes) -> bytes:
    """``request`` (the ``SalesOrderBulkRequest`` element) in a SOAP 1.1 envelope."""
    return _ENVELOPE_HEAD + request + _ENVELOPE_TAIL


@dataclass(frozen=True)
class SoapFault:
    """A SOAP fault: its code (without prefix), string and the detail's reason texts."""

    code: str
    text: str
    reasons: tuple[str, ...] = ()

    def message(self) -> str:
        """The fault string, then the reasons it does not already contain."""
        extra = [reason for reason in self.reasons if reason and reason not in self.text]
        return " | ".join([self.text or self.code, *extra])


def parse_fault(body: bytes) -> SoapFault | None:
    """The fault in a SOAP 1.1 or 1.2 reply, or ``None`` when the body holds none."""
    try:
        root = parse_xml(body, what="SOAP reply")
    except ValidationError:
        return None
    fault = next(
        (n for n in root.iter() if isinstance(n.tag, str) and local_name(n) == "Fault"), None
    )
    if fault is None:
        return None
    code = text = ""
    reasons: list[str] = []
    for node in fault.iter():
        if not isinstance(node.tag, str):
            continue
        name = local_name(node)
        value = (node.text or "").strip()
        if name in ("faultcode", "Value") and not code:  # SOAP 1.2: Code/Value
            code = value
        elif name in ("faultstring", "Text") and not text:
            text = value
        elif name == "ReasonText" and value:
            reasons.append(value)
    return SoapFault(code=code.rpartition(":")[2], text=text, reasons=tuple(reasons))


def fault_error(system: str, status: int, fault: SoapFault) -> Exception:
    """The error for a SOAP fault (see the module docstring)."""
    detail = fault.message()
    text = f"{system} refused the sales order message ({fault.code} fault): {detail}"
    if fault.code in ("Client", "Sender", "VersionMismatch", "MustUnderstand"):
        return PermanentError(text, status=status, backend_message=detail, code=fault.code)
    if _AUTHORIZATION in fault.text.lower():
        return PermanentError(text, status=403, backend_message=detail, code=fault.code)
    return TransientError(text, status=status, backend_message=detail)


@dataclass(frozen=True)
class BulkAcknowledgement:
    """S/4 took the message: the status it answered and the message id sent."""

    status: int
    message_id: str
    raw: bytes = field(default=b"", repr=False)


class SalesOrderBulkClient(ConnectorClient):
    """Posts ``SalesOrderBulkRequest`` messages to one S/4HANA Cloud system."""

    system = "S/4HANA Cloud"

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        verify: bool = True,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        auth = httpx2.BasicAuth(user, password or "") if user else None
        self._client = httpx2.AsyncClient(
            auth=auth, **client_kwargs(timeout=timeout, verify=verify, transport=transport)
        )
        self.requests = 0

    async def send(self, request: bytes, *, message_id: str) -> BulkAcknowledgement:
        """POST one bulk message; returns S/4's acknowledgement or raises a classified error."""
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": SOAP_ACTION}
        self.requests += 1
        try:
            response = await self._client.post(
                self.url, content=soap_envelope(request), headers=headers
            )
        except httpx2.HTTPError as exc:
            raise transport_error(self.system, exc) from exc
        status = response.status_code
        if status in (200, 202):
            fault = parse_fault(response.content) if response.content.strip() else None
            if fault is not None:
                raise fault_error(self.system, status, fault)
            return BulkAcknowledgement(status=status, message_id=message_id, raw=response.content)
        fault = parse_fault(response.content) if b"Fault" in response.content else None
        if fault is not None and status == 500:
            raise fault_error(self.system, status, fault)
        message = fault.message() if fault is not None else _short(response)
        raise classify_status(self.system, response, message)


def _short(response: httpx2.Response) -> str:
    content_type = response.headers.get("content-type", "")
    if "html" in content_type:
        try:
            root = etree.fromstring(
                response.content, etree.HTMLParser(no_network=True, recover=True)
            )
        except (etree.XMLSyntaxError, ValueError):
            root = None
        if root is not None:
            text = " ".join(" ".join(str(part) for part in root.itertext()).split())
            return text[:300] or f"HTTP {response.status_code}"
    return response.text[:500] or f"HTTP {response.status_code}"
