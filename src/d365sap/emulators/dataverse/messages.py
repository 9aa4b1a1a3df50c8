"""Request and response of one operation of the Dataverse emulator.

Both build on :mod:`d365sap.emulators.operations`. The query, change-tracking and webhook
modules work on these, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from d365sap.emulators.operations import Operation, Reply

JSON_TYPE = "application/json; odata.metadata=minimal; charset=utf-8"
MODIFYING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as proven by the bearer token.

    ``user_id`` is the object id of the application user the client id maps to; service
    protection limits are counted per ``user_id``.
    """

    user_id: str
    client_id: str


@dataclass(frozen=True)
class WebApiRequest(Operation):
    """One Web API operation (``path`` below ``/api/data/v9.2/``) of an authenticated caller."""

    caller: Caller


@dataclass
class WebApiResponse(Reply):
    """Status, headers and body of one Web API operation."""

    json_headers: ClassVar[Mapping[str, str]] = {
        "content-type": JSON_TYPE,
        "odata-version": "4.0",
    }

    @classmethod
    def error(
        cls, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> WebApiResponse:
        """Dataverse's error body: ``{"error": {"code": "0x…", "message": "…"}}``."""
        return cls.json(status, {"error": {"code": code, "message": message}}, headers)
