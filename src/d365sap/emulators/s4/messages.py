"""Request and response of one operation of the S/4 emulator.

Both build on :mod:`d365sap.emulators.operations`; S/4 adds the SAP user and its error body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from d365sap.emulators.operations import Operation, Reply
from d365sap.emulators.s4.errors import ODataError, error_bytes

JSON_TYPE = "application/json; charset=utf-8"
MODIFYING = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})


@dataclass(frozen=True)
class ODataRequest(Operation):
    """One OData operation of ``user`` (the authenticated SAP user)."""

    user: str


@dataclass
class ODataResponse(Reply):
    """Status, headers and body of one OData operation."""

    json_headers: ClassVar[Mapping[str, str]] = {"content-type": JSON_TYPE}

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
