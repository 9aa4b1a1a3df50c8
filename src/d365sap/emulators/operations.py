"""One operation of an emulated OData service, free of any web framework.

The S/4 and Dataverse emulators both work on these, not on Starlette objects, so a part of a
``$batch`` and a plain HTTP request go through exactly the same code, and their service cores
can be tested without a server. Each emulator adds who called (its own notion of a user) and its
own error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class Operation:
    """One request: ``path`` is below the service root and still percent-encoded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    service_root: str

    def header(self, name: str) -> str | None:
        """Header value by lower-case name."""
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """Status, headers and body of one operation."""

    json_headers: ClassVar[Mapping[str, str]] = {"content-type": "application/json"}
    """The headers of a JSON reply (each service has its own content type and version)."""

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
    def json(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> Self:
        """A compact JSON reply with the service's JSON headers."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, {**cls.json_headers, **(headers or {})}, body)
