"""Framework-free request and response of one OData operation.

The service core works on these, not on Starlette objects, so a ``$batch`` part and a plain
HTTP request go through exactly the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from d365sap.emulators.s4.errors import ODataError, error_bytes

JSON_TYPE = "application/json; charset=utf-8"
MODIFYING = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})


@dataclass(frozen=True)
class ODataRequest:
    """One operation: ``path`` is below the service root and still percent-encoded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    service_root: str
    user: str

    def header(self, name: str) -> str | None:
        """Header value by lower-case name."""
        return self.headers.get(name.lower())


@dataclass
class ODataResponse:
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
    ) -> ODataResponse:
        """A JSON reply."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, {"content-type": JSON_TYPE, **(headers or {})}, body)

    @classmethod
    def error(
        cls,
        error: ODataError,
        *,
        in_batch: bool = False,
        application: Mapping[str, Any] | None = None,
    ) -> ODataResponse:
        """SAP's JSON error body with the error's status and extra headers."""
        headers = {"content-type": JSON_TYPE, **error.headers}
        body = error_bytes(error, in_batch=in_batch, application=application)
        return cls(error.status, headers, body)
