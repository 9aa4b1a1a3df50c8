"""Why an inbound IDoc document is refused, in the terms of SAP's IDoc-XML inbound service.

The WSDL of that service (``resources/wsdl/IDOC_INBOUND_XML_SOAP_HTTP.wsdl``) declares one fault,
``ZidocInboundXmlSoapHttp.Exception``, whose ``Name`` is one of five fixed exception names. Every
refusal carries one of those names plus the list of concrete problems, so the SOAP fault, the plain
XML error and the tests all say the same thing.
"""

from __future__ import annotations

from enum import StrEnum


class ExceptionName(StrEnum):
    """The exception names the WSDL allows (``ZidocInboundXmlSoapHttp.RfcExceptions``)."""

    NO_IDOCS_RECEIVED = "NoIdocsReceived"
    TAG_ERROR = "TagError"
    NO_DATA_RECEIVED = "NoDataReceived"
    NO_IDOCS_SAVED = "NoIdocsSaved"
    NO_AUTHORITY = "NoAuthority"


class IdocRejectedError(Exception):
    """The whole document is refused: nothing is saved, no IDoc number is assigned.

    ``faultcode`` is the SOAP 1.1 fault code without prefix (``Client`` for anything the sender must
    fix, ``Server`` for the emulator's own failures, ``VersionMismatch`` for a SOAP 1.2 envelope).
    ``plain_status`` is the HTTP status the plain ``/sap/bc/idoc_xml`` endpoint answers with.
    """

    def __init__(
        self,
        name: ExceptionName,
        problems: list[str],
        *,
        faultcode: str = "Client",
        plain_status: int = 400,
    ) -> None:
        if not problems:
            raise ValueError("a rejection needs at least one problem")
        self.name = name
        self.problems = problems
        self.faultcode = faultcode
        self.plain_status = plain_status
        super().__init__(self.faultstring)

    @property
    def faultstring(self) -> str:
        """The first problem, with a count of the others (all of them are in :attr:`text`)."""
        first = self.problems[0]
        more = len(self.problems) - 1
        return first if more == 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"

    @property
    def text(self) -> str:
        """Every problem, separated by ``; ``."""
        return "; ".join(self.problems)
