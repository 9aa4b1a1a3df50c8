"""Dataverse's error answers turned into d365sap's error tree.

The Web API answers every failure with ``{"error": {"code": "0x…", "message": "…"}}`` (the code
is often empty; the message names the column or key). The classification is the one of
:func:`d365sap.connectors.base.classify_status` (429/5xx transient with ``Retry-After``, 412,
404, other 4xx permanent) plus one case of Dataverse's own: a change-tracking token that has
expired (``0x80044352``, "Version stamp associated with the client has expired") becomes
:class:`~d365sap.errors.DeltaTokenExpiredError`, so a delta loader can re-baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx2

from d365sap.connectors.base import classify_status
from d365sap.errors import DeltaTokenExpiredError, PermanentError, TransientError

SYSTEM = "Dataverse"
EXPIRED_VERSION_STAMP = "0x80044352"
"""Dataverse's ``ExpiredVersionStamp``: the delta token is older than the change log."""
DUPLICATE_RECORD = "0x80040237"
"""``DuplicateRecord``: ``If-None-Match: *`` met an existing row, or a create reused an id."""
VERSION_MISMATCH = "0x80060882"
"""``ConcurrencyVersionMismatch``: ``If-Match`` named an older row version."""


@dataclass(frozen=True)
class DataverseFault:
    """What the Web API said about a failure: its code (may be empty) and message."""

    code: str
    message: str

    def text(self) -> str:
        """``code: message``, or the message alone when the code is empty."""
        return f"{self.code}: {self.message}" if self.code else self.message


def parse_fault(content: bytes, reason: str = "") -> DataverseFault:
    """The ``error`` member of a Dataverse answer; the raw text when it is not one."""
    try:
        document = json.loads(content)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        return DataverseFault(str(error.get("code") or ""), str(error.get("message") or ""))
    text = content.decode("utf-8", "replace").strip()[:500]
    return DataverseFault("", text or reason)


def failure(response: httpx2.Response, *, what: str = "") -> Exception:
    """The error for a non-success answer, Dataverse's code and message kept.

    ``what`` names the request (``PATCH accounts(…)``) in the error text.
    """
    fault = parse_fault(response.content, response.reason_phrase)
    return fault_error(response, fault, what=what)


def fault_error(response: httpx2.Response, fault: DataverseFault, *, what: str = "") -> Exception:
    """The error for ``response`` once its fault has been read (also for ``$batch`` parts)."""
    system = f"{SYSTEM} {what}".rstrip()
    if fault.code.lower() == EXPIRED_VERSION_STAMP:
        return DeltaTokenExpiredError(
            f"{system} answered {response.status_code}: {fault.text()}",
            status=response.status_code,
            backend_message=fault.message,
            code=fault.code,
        )
    error = classify_status(system, response, fault.text())
    if isinstance(error, PermanentError | TransientError):
        error.backend_message = fault.message  # the text says "code: message"; this the message
    if isinstance(error, PermanentError) and error.code is None and fault.code:
        error.code = fault.code
    return error
