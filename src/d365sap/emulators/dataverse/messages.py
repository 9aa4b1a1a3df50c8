"""Framework-free request and response of one Dataverse Web API operation.

The service core works on these, not on Starlette objects, so a ``$batch`` part and a plain
HTTP request go through exactly the same code, and the query, change-tracking and webhook
modules can be tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

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
class WebApiRequest:
    """One operation: ``path`` is below ``/api/data/v9.2/`` and still percent-encoded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    service_root: str
    caller: Caller

    def header(self, name: str) -> str | None:
        """Header value by lower-case name."""
        return self.headers.get(name.lower())


@dataclass
class WebApiResponse:
    """Status, headers and body of one operation."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def reason(self) -> str:
        """The HTTP reason phrase of :attr:`status`."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return ""

    @classmethod
    def json(
        cls, status: int, document: Any, headers: dict[str, str] | None = None
    ) -> WebApiResponse:
        """A JSON reply with OData v4 headers."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(
            status,
            {"content-type": JSON_TYPE, "odata-version": "4.0", **(headers or {})},
            body,
        )

    @classmethod
    def error(
        cls, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> WebApiResponse:
        """Dataverse's error body: ``{"error": {"code": "0x…", "message": "…"}}``."""
        return cls.json(status, {"error": {"code": code, "message": message}}, headers)
