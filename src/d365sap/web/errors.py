"""Error answers of the service's own HTTP layer, in the same JSON shape as flow results."""

from __future__ import annotations

from fastapi.responses import JSONResponse


def error_response(
    status: int,
    error_type: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``{"outcome":"error","error":{"type","message","field"}}`` with ``status``."""
    error: dict[str, object] = {"type": error_type, "message": message, "retryable": False}
    if field is not None:
        error["field"] = field
    return JSONResponse({"outcome": "error", "error": error}, status_code=status, headers=headers)
