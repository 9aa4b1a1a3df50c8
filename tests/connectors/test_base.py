"""Classification of back-end answers into the error tree."""

from __future__ import annotations

import httpx2
import pytest

from d365sap.connectors.base import classify_status, retry_after_seconds, transport_error
from d365sap.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    TransientError,
)


def response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers or {})


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (404, NotFoundError),
        (409, ConflictError),
        (412, PreconditionFailedError),
        (400, PermanentError),
        (401, PermanentError),
    ],
)
def test_statuses(status: int, kind: type[Exception]) -> None:
    error = classify_status("S/4", response(status), "text")
    assert type(error) is kind
    assert "S/4 answered" in str(error) and "text" in str(error)


def test_conflict_predicate_and_retry_after() -> None:
    error = classify_status(
        "S/4", response(400), "already exists", is_conflict=lambda s, m: "already" in m
    )
    assert isinstance(error, ConflictError)
    throttled = classify_status("S/4", response(429, {"Retry-After": "12"}), "slow down")
    assert isinstance(throttled, TransientError) and throttled.retry_after == 12.0


def test_retry_after_forms() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_transport_errors_are_transient() -> None:
    error = transport_error("SAP ERP", httpx2.ReadTimeout("slow"))
    assert isinstance(error, TransientError) and "timed out" in error.message
    assert "connection failed" in transport_error("S/4", httpx2.ConnectError("refused")).message
