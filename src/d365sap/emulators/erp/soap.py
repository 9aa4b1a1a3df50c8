"""SOAP 1.1 framing of SAP's IDoc-XML inbound service: unwrap requests, build answers and faults.

Requests may be a SOAP 1.1 envelope whose body holds the IDoc document (what the IDoc adapter sends
to ``/sap/bc/srt/idoc``), the same envelope around the WSDL's RFC-style request
``ZidocInboundXmlSoapHttp`` with the document base64-encoded in ``XmlStream``, or the bare document.

Answers follow the packaged WSDL (``IDOC_INBOUND_XML_SOAP_HTTP.wsdl``): the response element
``ZidocInboundXmlSoapHttpResponse`` with one ``Assign/item`` (``TransferId``, ``DbId``) per IDoc,
and faults carry the WSDL's ``ZidocInboundXmlSoapHttp.Exception`` (``Name``, ``Text``) as detail.
SAP's ABAP SOAP runtime writes the envelope with prefix ``soap-env`` and the payload with ``n0``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from lxml import etree

from d365sap.emulators.erp.faults import ExceptionName, IdocRejectedError
from d365sap.errors import ValidationError
from d365sap.xmlsafe import parse_xml

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
RFC_STYLE_NS = "urn:sap-com:document:sap:soap:functions:mc-style"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_REQUEST = "ZidocInboundXmlSoapHttp"
_RESPONSE = "ZidocInboundXmlSoapHttpResponse"
_EXCEPTION = "ZidocInboundXmlSoapHttp.Exception"


def _rejected(name: ExceptionName, problem: str, *, faultcode: str = "Client") -> IdocRejectedError:
    return IdocRejectedError(name, [problem], faultcode=faultcode)


def _decode_xml_stream(request: etree._Element) -> etree._Element:
    stream = request.find("XmlStream")
    text = (stream.text or "").strip() if stream is not None else ""
    if not text:
        raise _rejected(ExceptionName.NO_DATA_RECEIVED, f"{_REQUEST}-XmlStream: no data received")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _rejected(
            ExceptionName.TAG_ERROR, f"{_REQUEST}-XmlStream: not valid base64 ({exc})"
        ) from exc
    try:
        return parse_xml(data, what=f"{_REQUEST}-XmlStream")
    except ValidationError as exc:
        raise _rejected(ExceptionName.TAG_ERROR, exc.message) from exc


def unwrap_request(root: etree._Element) -> etree._Element:
    """The IDoc document a request carries (the root itself when it is not a SOAP envelope)."""
    qname = etree.QName(root)
    if qname.namespace == SOAP12_NS:
        raise _rejected(
            ExceptionName.TAG_ERROR,
            f"{root.tag}: SOAP 1.2 is not supported here, send a SOAP 1.1 envelope ({SOAP11_NS})",
            faultcode="VersionMismatch",
        )
    if qname.namespace != SOAP11_NS:
        return root
    if qname.localname != "Envelope":
        raise _rejected(ExceptionName.TAG_ERROR, f"soap-env:{qname.localname}: Envelope expected")
    body = root.find(f"{{{SOAP11_NS}}}Body")
    if body is None:
        raise _rejected(ExceptionName.NO_DATA_RECEIVED, "soap-env:Envelope: Body is missing")
    payload = [child for child in body if isinstance(child.tag, str)]
    if not payload:
        raise _rejected(ExceptionName.NO_DATA_RECEIVED, "soap-env:Body: no IDoc document in it")
    if len(payload) > 1:
        raise _rejected(
            ExceptionName.TAG_ERROR,
            f"soap-env:Body: exactly one IDoc document expected, found {len(payload)} elements",
        )
    content = payload[0]
    content_name = etree.QName(content)
    if content_name.namespace == RFC_STYLE_NS and content_name.localname == _REQUEST:
        return _decode_xml_stream(content)
    return content


def assign_element(assignments: Iterable[tuple[str, str]]) -> etree._Element:
    """``n0:ZidocInboundXmlSoapHttpResponse`` for (transfer id, IDoc number) pairs."""
    response = etree.Element(etree.QName(RFC_STYLE_NS, _RESPONSE), nsmap={"n0": RFC_STYLE_NS})
    assign = etree.SubElement(response, "Assign")
    for transfer_id, docnum in assignments:
        item = etree.SubElement(assign, "item")
        etree.SubElement(item, "TransferId").text = transfer_id
        etree.SubElement(item, "DbId").text = docnum
    return response


def exception_element(rejection: IdocRejectedError) -> etree._Element:
    """``n0:ZidocInboundXmlSoapHttp.Exception`` with the exception name and every problem."""
    element = etree.Element(etree.QName(RFC_STYLE_NS, _EXCEPTION), nsmap={"n0": RFC_STYLE_NS})
    etree.SubElement(element, "Name").text = rejection.name.value
    etree.SubElement(element, "Text").text = rejection.text
    return element


def to_bytes(element: etree._Element) -> bytes:
    """Serialise with an XML declaration, UTF-8, indented for people reading logs."""
    etree.indent(element, space=" ")
    return etree.tostring(element, xml_declaration=True, encoding="utf-8")


def envelope(content: etree._Element) -> etree._Element:
    """A SOAP 1.1 envelope (prefix ``soap-env``, empty header) around ``content``."""
    root = etree.Element(etree.QName(SOAP11_NS, "Envelope"), nsmap={"soap-env": SOAP11_NS})
    etree.SubElement(root, etree.QName(SOAP11_NS, "Header"))
    body = etree.SubElement(root, etree.QName(SOAP11_NS, "Body"))
    body.append(content)
    return root


def soap_response(assignments: Iterable[tuple[str, str]]) -> bytes:
    """The SOAP 1.1 answer to an accepted document."""
    return to_bytes(envelope(assign_element(assignments)))


def soap_fault(rejection: IdocRejectedError) -> bytes:
    """The SOAP 1.1 fault for a refused document (sent with HTTP 500)."""
    fault = etree.Element(etree.QName(SOAP11_NS, "Fault"))
    etree.SubElement(fault, "faultcode").text = f"soap-env:{rejection.faultcode}"
    faultstring = etree.SubElement(fault, "faultstring")
    faultstring.set(etree.QName(XML_NS, "lang").text, "en")
    faultstring.text = rejection.faultstring
    detail = etree.SubElement(fault, "detail")
    detail.append(exception_element(rejection))
    return to_bytes(envelope(fault))
