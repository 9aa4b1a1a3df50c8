"""SOAP 1.1 and 1.2 framing as SAP's ABAP SOAP runtime does it: read envelopes, write faults.

The version comes from the media type (``text/xml`` is SOAP 1.1, ``application/soap+xml`` SOAP
1.2) and the envelope must be of that version, else the answer is a ``VersionMismatch`` fault. A
header block marked ``mustUnderstand`` that the runtime does not know (anything but
WS-Addressing) gets a ``MustUnderstand`` fault. The body must hold exactly one element.

SAP writes its envelopes with the prefix ``soap-env`` (1.1) or ``env`` (1.2) and answers every
fault with HTTP 500; a fault string is in English (``xml:lang="en"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from lxml import etree

from d365sap.errors import ValidationError
from d365sap.xmlsafe import parse_xml

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
XML_NS = "http://www.w3.org/XML/1998/namespace"
WS_ADDRESSING_NS = frozenset(
    {"http://www.w3.org/2005/08/addressing", "http://schemas.xmlsoap.org/ws/2004/08/addressing"}
)


class SoapVersion(Enum):
    """SOAP 1.1 or 1.2, with the media type and envelope namespace of each."""

    V11 = "1.1"
    V12 = "1.2"

    @property
    def namespace(self) -> str:
        """The envelope namespace."""
        return SOAP11_NS if self is SoapVersion.V11 else SOAP12_NS

    @property
    def media_type(self) -> str:
        """``text/xml`` or ``application/soap+xml``."""
        return "text/xml" if self is SoapVersion.V11 else "application/soap+xml"

    @property
    def prefix(self) -> str:
        """The envelope prefix SAP writes."""
        return "soap-env" if self is SoapVersion.V11 else "env"

    @classmethod
    def of_media_type(cls, content_type: str) -> SoapVersion | None:
        """The version a ``Content-Type`` announces, or None for anything else."""
        media = content_type.split(";")[0].strip().lower()
        for version in cls:
            if media == version.media_type:
                return version
        return None


class FaultCode(Enum):
    """Fault codes, written per version (``Client`` in 1.1 is ``Sender`` in 1.2)."""

    CLIENT = ("Client", "Sender")
    SERVER = ("Server", "Receiver")
    VERSION_MISMATCH = ("VersionMismatch", "VersionMismatch")
    MUST_UNDERSTAND = ("MustUnderstand", "MustUnderstand")

    def written(self, version: SoapVersion) -> str:
        """``soap-env:Client`` or ``env:Sender`` and so on."""
        name = self.value[0] if version is SoapVersion.V11 else self.value[1]
        return f"{version.prefix}:{name}"


@dataclass
class Fault:
    """A SOAP fault: code, the English fault string and the elements of ``detail``."""

    code: FaultCode
    text: str
    detail: list[etree._Element] = field(default_factory=list)


class SoapFaultError(Exception):
    """Raised while reading a request; the endpoint answers with :attr:`fault`."""

    def __init__(self, fault: Fault, problems: list[str] | None = None) -> None:
        super().__init__(fault.text)
        self.fault = fault
        self.problems = problems or [fault.text]


def _client(text: str, code: FaultCode = FaultCode.CLIENT) -> SoapFaultError:
    return SoapFaultError(Fault(code, text))


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _must_understand(block: etree._Element, version: SoapVersion) -> bool:
    value = block.get(f"{{{version.namespace}}}mustUnderstand", "").strip().lower()
    return value in ("1", "true")


def read_envelope(body: bytes, version: SoapVersion) -> etree._Element:
    """The one element in the body of a SOAP envelope of ``version``; SoapFaultError if not."""
    try:
        root = parse_xml(body, what="SOAP message")
    except ValidationError as exc:
        raise _client(f"SOAP message cannot be parsed: {exc.message}") from exc
    name = etree.QName(root)
    if name.localname != "Envelope" or name.namespace not in (SOAP11_NS, SOAP12_NS):
        raise _client(f"SOAP message expected, found the element {root.tag}")
    if name.namespace != version.namespace:
        other = SoapVersion.V11 if version is SoapVersion.V12 else SoapVersion.V12
        raise _client(
            f"SOAP {other.value} envelope sent as {version.media_type}: a SOAP {version.value} "
            f"envelope ({version.namespace}) is expected",
            FaultCode.VERSION_MISMATCH,
        )
    header = root.find(f"{{{version.namespace}}}Header")
    if header is not None:
        for block in _elements(header):
            block_ns = etree.QName(block).namespace
            if _must_understand(block, version) and block_ns not in WS_ADDRESSING_NS:
                raise _client(
                    f"Header block {block.tag} must be understood but is not supported",
                    FaultCode.MUST_UNDERSTAND,
                )
    soap_body = root.find(f"{{{version.namespace}}}Body")
    if soap_body is None:
        raise _client("SOAP envelope has no Body")
    payload = _elements(soap_body)
    if len(payload) != 1:
        raise _client(f"SOAP Body must hold exactly one element, found {len(payload)}")
    return payload[0]


def _envelope(version: SoapVersion) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(
        etree.QName(version.namespace, "Envelope"), nsmap={version.prefix: version.namespace}
    )
    etree.SubElement(envelope, etree.QName(version.namespace, "Header"))
    return envelope, etree.SubElement(envelope, etree.QName(version.namespace, "Body"))


def message_bytes(version: SoapVersion, payload: etree._Element) -> bytes:
    """An envelope of ``version`` around ``payload``, serialised as UTF-8."""
    envelope, body = _envelope(version)
    body.append(payload)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def fault_bytes(version: SoapVersion, fault: Fault) -> bytes:
    """The fault as SAP writes it in ``version``."""
    envelope, body = _envelope(version)
    ns = version.namespace
    lang = etree.QName(XML_NS, "lang").text
    if version is SoapVersion.V11:
        element = etree.SubElement(body, etree.QName(ns, "Fault"))
        etree.SubElement(element, "faultcode").text = fault.code.written(version)
        faultstring = etree.SubElement(element, "faultstring")
        faultstring.set(lang, "en")
        faultstring.text = fault.text
        detail = etree.SubElement(element, "detail")
    else:
        element = etree.SubElement(body, etree.QName(ns, "Fault"))
        code = etree.SubElement(element, etree.QName(ns, "Code"))
        etree.SubElement(code, etree.QName(ns, "Value")).text = fault.code.written(version)
        reason = etree.SubElement(element, etree.QName(ns, "Reason"))
        text = etree.SubElement(reason, etree.QName(ns, "Text"))
        text.set(lang, "en")
        text.text = fault.text
        detail = etree.SubElement(element, etree.QName(ns, "Detail"))
    for item in fault.detail:
        detail.append(item)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def version_of_body(body: bytes) -> SoapVersion:
    """A best guess at the version of a (possibly broken) request, for answering a fault."""
    return SoapVersion.V12 if SOAP12_NS.encode() in body[:4096] else SoapVersion.V11
