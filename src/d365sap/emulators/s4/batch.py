"""``$batch``: multipart/mixed with retrieve parts and atomic change sets.

Structure of SAP Gateway's replies: one ``application/http`` part per retrieve, one nested
``multipart/mixed`` per change set holding one part per operation, the overall status
``202 Accepted``. A change set is atomic: when one operation fails, everything it did is rolled
back and the change set is answered by that single error response instead of a nested
multipart (OData v2 batch processing).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.messages import MODIFYING, ODataRequest, ODataResponse

if TYPE_CHECKING:
    from d365sap.emulators.s4.service import ODataService

_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.IGNORECASE)
CRLF = b"\r\n"


class _ChangeSetFailedError(Exception):
    def __init__(self, response: ODataResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _invalid(message: str) -> errors.ODataError:
    return errors.ODataError(400, errors.BATCH_INVALID, f"Invalid $batch request: {message}")


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/mixed`` content type."""
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise _invalid("Content-Type must be multipart/mixed with a boundary")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise _invalid("Content-Type has no boundary")
    return match.group(1).strip()


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The parts between ``--boundary`` delimiter lines, up to ``--boundary--``."""
    delimiter = b"--" + boundary.encode("latin-1")
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(b"\n" + delimiter)
        if position < 0:
            raise _invalid(f"boundary '{boundary}' not found")
        position += 1
    parts: list[bytes] = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts
        line_end = body.find(b"\n", position)
        if line_end < 0:
            raise _invalid("missing closing delimiter")
        start = line_end + 1
        following = body.find(b"\n" + delimiter, start)
        if following < 0:
            raise _invalid("missing closing delimiter")
        parts.append(body[start:following].removesuffix(b"\r"))
        position = following + 1


def split_head(block: bytes) -> tuple[list[str], bytes]:
    """Header lines and the rest of a MIME part or HTTP message."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = block.find(separator)
        if index >= 0:
            head, rest = block[:index], block[index + len(separator) :]
            return head.decode("latin-1").splitlines(), rest
    return block.decode("latin-1").splitlines(), b""


def parse_headers(lines: list[str]) -> dict[str, str]:
    """``Name: value`` lines into a lower-case dict."""
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _inner(outer: ODataRequest, payload: bytes) -> ODataRequest:
    lines, body = split_head(payload)
    if not lines:
        raise _invalid("empty operation")
    request_line = lines[0].split()
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
        raise _invalid(f"bad request line '{lines[0]}'")
    method, url = request_line[0].upper(), request_line[1]
    headers = parse_headers(lines[1:])
    if "content-length" in headers and headers["content-length"].isdigit():
        body = body[: int(headers["content-length"])]
    else:
        body = body.rstrip(b"\r\n")
    override = headers.get("x-http-method", "").upper()
    if method == "POST" and override in ("MERGE", "PATCH", "PUT", "DELETE"):
        method = override
    root_path = urlsplit(outer.service_root).path
    parts = urlsplit(url)
    path = parts.path
    if path.startswith(root_path):
        path = path[len(root_path) :]
    return replace(
        outer,
        method=method,
        path=path.lstrip("/"),
        query=parts.query,
        headers=headers,
        body=body,
    )


def _http_part(response: ODataResponse, content_id: str | None = None) -> bytes:
    status = f"HTTP/1.1 {response.status} {response.reason}".encode("latin-1")
    lines = [status]
    headers = {**response.headers, "content-length": str(len(response.body))}
    headers.setdefault("dataserviceversion", "2.0")
    lines.extend(f"{k}: {v}".encode("latin-1") for k, v in headers.items())
    message = CRLF.join(lines) + CRLF + CRLF + response.body
    head = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if content_id:
        head.append(b"Content-ID: " + content_id.encode("latin-1"))
    head.append(b"Content-Length: " + str(len(message)).encode())
    return CRLF.join(head) + CRLF + CRLF + message


def _multipart(parts: list[bytes], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode("latin-1")
    out = b"".join(delimiter + CRLF + part + CRLF for part in parts)
    return out + delimiter + b"--" + CRLF


def _journal(service: ODataService, op: ODataRequest, response: ODataResponse) -> None:
    service.journal.record(
        method=op.method,
        path=op.path,
        query=op.query,
        headers=op.headers,
        body=op.body,
        status=response.status,
        user=op.user,
        in_batch=True,
    )


def _with_reference(op: ODataRequest, locations: dict[str, str]) -> ODataRequest:
    if not op.path.startswith("$"):
        return op
    reference, _, rest = op.path[1:].partition("/")
    if reference not in locations:
        raise _invalid(f"unknown Content-ID reference '${reference}'")
    base = locations[reference].removeprefix(op.service_root)
    return replace(op, path=f"{base}/{rest}" if rest else base)


def _change_set(service: ODataService, outer: ODataRequest, payload: bytes, ctype: str) -> bytes:
    operations: list[tuple[ODataRequest, str | None]] = []
    for part in split_multipart(payload, boundary_of(ctype)):
        lines, http_payload = split_head(part)
        part_headers = parse_headers(lines)
        if not part_headers.get("content-type", "").startswith("application/http"):
            raise _invalid("change set parts must be application/http")
        operations.append((_inner(outer, http_payload), part_headers.get("content-id")))
    answered: list[bytes] = []
    locations: dict[str, str] = {}
    try:
        with service.store.transaction():
            for op, content_id in operations:
                if op.method not in MODIFYING:
                    error = errors.ODataError(
                        400, errors.BATCH_INVALID, f"{op.method} is not allowed in a change set"
                    )
                    raise _ChangeSetFailedError(
                        ODataResponse.error(error, in_batch=True, application=service.application)
                    )
                op = _with_reference(op, locations)
                response = service.handle(op, in_batch=True)
                _journal(service, op, response)
                if response.status >= 400:
                    raise _ChangeSetFailedError(response)
                if content_id and "location" in response.headers:
                    locations[content_id] = response.headers["location"]
                answered.append(_http_part(response, content_id))
    except _ChangeSetFailedError as failed:
        return _http_part(failed.response)
    boundary = f"changeset_{uuid.uuid4().hex}"
    head = f"Content-Type: multipart/mixed; boundary={boundary}".encode("latin-1")
    return head + CRLF + CRLF + _multipart(answered, boundary).removesuffix(CRLF)


def handle_batch(service: ODataService, request: ODataRequest) -> ODataResponse:
    """Answer a ``POST $batch``."""
    parts = split_multipart(request.body, boundary_of(request.header("content-type")))
    answered: list[bytes] = []
    for part in parts:
        lines, payload = split_head(part)
        ctype = parse_headers(lines).get("content-type", "")
        if ctype.lower().startswith("multipart/mixed"):
            answered.append(_change_set(service, request, payload, ctype))
        elif ctype.lower().startswith("application/http"):
            op = _inner(request, payload)
            if op.method in MODIFYING:
                error = errors.ODataError(
                    400,
                    errors.BATCH_INVALID,
                    f"{op.method} must be sent inside a change set",
                )
                response = ODataResponse.error(
                    error, in_batch=True, application=service.application
                )
            else:
                response = service.handle(op, in_batch=True)
            answered.append(_http_part(response))
        else:
            raise _invalid(f"unexpected part of type '{ctype}'")
    boundary = f"batch_{uuid.uuid4().hex}"
    return ODataResponse(
        202,
        {"content-type": f"multipart/mixed; boundary={boundary}"},
        _multipart(answered, boundary),
    )
