"""``IDOC_READ_COMPLETELY`` as a SOAP service: how a sender learns what became of its IDoc.

SAP's IDoc inbound answers with the IDoc number only (``IdocAssign``); whether the IDoc posted,
and the number of a customer it created, are in the IDoc's status records (EDIDS). A sender reads
them with the RFC-enabled function module ``IDOC_READ_COMPLETELY``, exposed as a web service in
SOAMANAGER like the package's ``ZIDOC_INBOUND_XML_SOAP_HTTP``: same SOAP runtime, same naming
style (``urn:sap-com:document:sap:soap:functions:mc-style``, ``DOCUMENT_NUMBER`` →
``DocumentNumber``), at ``/sap/bc/srt/rfc/sap/zidoc_read_completely/<client>/
zidoc_read_completely/binding``.

Request: ``IdocReadCompletely`` with ``DocumentNumber`` and, for each table wanted, the empty table
parameter (``<IntEdids/>``, ``<IntEdidd/>``): as in SAP's RFC SOAP runtime, table parameters
come back only when the request carries them. Answer: ``IdocControl`` (EDIDC), the tables asked
for and ``NumberOfDataRecords``/``NumberOfStatusRecords``. The function's exceptions become SOAP
faults with ``IdocReadCompletely.Exception`` (``DocumentNotExist``, ``DocumentNumberInvalid``).
The emulator returns status records only; ``IntEdidd`` comes back empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from lxml import etree
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from d365sap.emulators.erp.auth import authenticated_user, logon_failed
from d365sap.emulators.erp.registry import DOCNUM_DIGITS
from d365sap.emulators.erp.soap import RFC_STYLE_NS, SOAP11_NS, XML_NS, envelope, to_bytes
from d365sap.emulators.erp.state import ErpState
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.errors import ValidationError
from d365sap.xmlsafe import parse_xml

SERVICE = "zidoc_read_completely"
STATUS_PATH = f"/sap/bc/srt/rfc/sap/{SERVICE}/{{client}}/{SERVICE}/{{binding}}"
FUNCTION = "IdocReadCompletely"
_MAX_BODY = 64 * 1024
_XML = "text/xml; charset=utf-8"
_CONTROL_FIELDS = (
    ("Tabnam", None),
    ("Mandt", None),
    ("Docnum", None),
    ("Docrel", None),
    ("Status", None),
    ("Direct", "DIRECT"),
    ("Idoctp", "IDOCTYP"),
    ("Cimtyp", "CIMTYP"),
    ("Mestyp", "MESTYP"),
    ("Sndpor", "SNDPOR"),
    ("Sndprt", "SNDPRT"),
    ("Sndprn", "SNDPRN"),
    ("Rcvpor", "RCVPOR"),
    ("Rcvprt", "RCVPRT"),
    ("Rcvprn", "RCVPRN"),
    ("Credat", None),
    ("Cretim", None),
    ("Refint", "REFINT"),
    ("Serial", "SERIAL"),
)


class _RefusalError(Exception):
    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name = name
        self.text = text


def _fault(name: str, text: str) -> bytes:
    fault = etree.Element(etree.QName(SOAP11_NS, "Fault"))
    etree.SubElement(fault, "faultcode").text = "soap-env:Client"
    faultstring = etree.SubElement(fault, "faultstring")
    faultstring.set(etree.QName(XML_NS, "lang").text, "en")
    faultstring.text = text
    detail = etree.SubElement(fault, "detail")
    exception = etree.SubElement(
        detail, etree.QName(RFC_STYLE_NS, f"{FUNCTION}.Exception"), nsmap={"n0": RFC_STYLE_NS}
    )
    etree.SubElement(exception, "Name").text = name
    etree.SubElement(exception, "Text").text = text
    return to_bytes(envelope(fault))


def _request(body: bytes) -> tuple[str, set[str]]:
    """The document number and the table parameters the request names."""
    try:
        root = parse_xml(body, what="SOAP request")
    except ValidationError as exc:
        raise _RefusalError("TagError", exc.message) from exc
    if etree.QName(root) != etree.QName(SOAP11_NS, "Envelope"):
        raise _RefusalError("TagError", "a SOAP 1.1 envelope is expected")
    call = root.find(f"{{{SOAP11_NS}}}Body/{{{RFC_STYLE_NS}}}{FUNCTION}")
    if call is None:
        raise _RefusalError("TagError", f"the body must hold n0:{FUNCTION} ({RFC_STYLE_NS})")
    number = call.find("DocumentNumber")
    tables = {child.tag for child in call if child.tag in ("IntEdids", "IntEdidd")}
    return (number.text or "").strip() if number is not None else "", tables


def _add(parent: etree._Element, name: str, value: str) -> None:
    etree.SubElement(parent, name).text = value


def _date_time(iso: str | None) -> tuple[str, str]:
    """``2026-11-27T09:00:00.123Z`` → (``2026-11-27``, ``09:00:00``)."""
    if not iso:
        return "0000-00-00", "00:00:00"
    date, _, rest = iso.partition("T")
    return date, rest[:8]


def _control(parent: etree._Element, idoc: Mapping[str, Any], client: str) -> None:
    control = etree.SubElement(parent, "IdocControl")
    created = _date_time(idoc.get("received_at"))
    fixed = {
        "Tabnam": "EDI_DC40",
        "Mandt": client,
        "Docnum": str(idoc["docnum"]),
        "Docrel": "",
        "Status": str(idoc["status"]),
        "Credat": created[0],
        "Cretim": created[1],
    }
    values: Mapping[str, str] = idoc.get("control") or {}
    for name, source in _CONTROL_FIELDS:
        _add(control, name, fixed[name] if source is None else values.get(source, ""))


def _statuses(parent: etree._Element, idoc: Mapping[str, Any]) -> None:
    table = etree.SubElement(parent, "IntEdids")
    for counter, status in enumerate(idoc["statuses"], start=1):
        item = etree.SubElement(table, "item")
        date, time = _date_time(status.get("at"))
        message = status.get("message") or {}
        parameters = [*message.get("parameters", []), "", "", "", ""][:4]
        for name, value in (
            ("Docnum", str(idoc["docnum"])),
            ("Logdat", date),
            ("Logtim", time),
            ("Countr", str(counter).zfill(DOCNUM_DIGITS)),
            ("Credat", date),
            ("Cretim", time),
            ("Status", str(status["status"])),
            ("Statxt", str(message.get("template") or status["text"])[:70]),
            ("Stapa1", parameters[0]),
            ("Stapa2", parameters[1]),
            ("Stapa3", parameters[2]),
            ("Stapa4", parameters[3]),
            ("Statyp", message.get("type", "")),
            ("Stamqu", "SAP" if message else ""),
            ("Stamid", message.get("id", "")),
            ("Stamno", message.get("number", "")),
        ):
            _add(item, name, value)


def _data_records(raw_xml: str) -> int:
    root = parse_xml(raw_xml.encode("utf-8"), what="stored IDoc")
    return sum(1 for e in root.iter() if e.get("SEGMENT") and e.tag != "EDI_DC40")


def answer(idoc: Mapping[str, Any], tables: set[str], client: str) -> bytes:
    """The ``IdocReadCompletelyResponse`` for one IDoc as the admin API describes it."""
    response = etree.Element(
        etree.QName(RFC_STYLE_NS, f"{FUNCTION}Response"), nsmap={"n0": RFC_STYLE_NS}
    )
    _control(response, idoc, client)
    if "IntEdidd" in tables:
        etree.SubElement(response, "IntEdidd")
    if "IntEdids" in tables:
        _statuses(response, idoc)
    _add(response, "NumberOfDataRecords", str(_data_records(str(idoc["raw_xml"]))))
    _add(response, "NumberOfStatusRecords", str(len(idoc["statuses"])))
    return to_bytes(envelope(response))


def status_router(state: ErpState, settings: ErpEmulatorSettings) -> APIRouter:
    """The SOAP endpoint of ``IDOC_READ_COMPLETELY`` for one emulator."""
    router = APIRouter()

    @router.post(STATUS_PATH, include_in_schema=False)
    async def read_completely(request: Request, client: str, binding: str) -> Response:
        if client != settings.sap_client:
            return logon_failed(settings, f"Logon failed: client {client[:3]} is not available")
        if authenticated_user(request.headers.get("authorization"), settings) is None:
            return logon_failed(settings)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "text/xml":
            return PlainTextResponse(
                f"Unsupported content type '{media_type}': send text/xml (SOAP 1.1)",
                status_code=415,
            )
        body = await request.body()
        if len(body) > _MAX_BODY:
            return PlainTextResponse("Request body too large", status_code=413)
        try:
            number, tables = _request(body)
            if not number.isdigit() or len(number) > DOCNUM_DIGITS:
                raise _RefusalError(
                    "DocumentNumberInvalid", f"'{number[:20]}' is not an IDoc number"
                )
            idoc = state.idoc(number)
            if idoc is None:
                raise _RefusalError(
                    "DocumentNotExist", f"IDoc {number.zfill(DOCNUM_DIGITS)} does not exist"
                )
        except _RefusalError as refusal:
            return Response(_fault(refusal.name, refusal.text), status_code=500, media_type=_XML)
        return Response(answer(idoc, tables, client), status_code=200, media_type=_XML)

    return router
