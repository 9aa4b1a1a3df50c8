"""The MIME side of ``$batch``: reading a multipart/mixed request, writing the response.

Kept apart from the batch logic so the framing rules (boundaries, part headers, request
lines, CRLF or bare LF) are tested on their own. Malformed framing raises
:class:`BatchFormatError` with the OData library's wording where it has one; the whole batch
is then refused with 400 before any operation runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from d365sap.emulators.dataverse.messages import WebApiResponse

CRLF = b"\r\n"
_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
_HEADER_CASE = {
    "odata-version": "OData-Version",
    "odata-maxversion": "OData-MaxVersion",
    "odata-entityid": "OData-EntityId",
    "etag": "ETag",
    "req_id": "REQ_ID",
    "www-authenticate": "WWW-Authenticate",
}


class BatchFormatError(ValueError):
    """The batch payload cannot be read; the message says why."""


@dataclass(frozen=True)
class Part:
    """One MIME part: its headers (lower-case names) and its content."""

    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class HttpRequestPart:
    """The HTTP request inside an ``application/http`` part."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/mixed`` content type."""
    if not content_type or content_type.split(";")[0].strip().lower() != "multipart/mixed":
        raise BatchFormatError(
            f"The content type '{content_type or ''}' is not valid for a batch: it must be "
            "'multipart/mixed' with a boundary parameter."
        )
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise BatchFormatError(
            f"The content type '{content_type}' of the batch has no boundary parameter."
        )
    return (match.group(1) or match.group(2)).strip()


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The parts between ``--boundary`` lines, up to the closing ``--boundary--`` line."""
    delimiter = re.compile(
        rb"(?:^|\r?\n)--" + re.escape(boundary.encode("latin-1")) + rb"(--)?[ \t]*(?:\r?\n|$)"
    )
    found = list(delimiter.finditer(body))
    if not found:
        raise BatchFormatError(f"The batch body has no part delimited by '--{boundary}'.")
    parts: list[bytes] = []
    for current, following in zip(found, [*found[1:], None], strict=True):
        if current.group(1):
            return parts
        if following is None:
            break
        parts.append(body[current.end() : following.start()])
    raise BatchFormatError(
        "Encountered an unexpected end of input while reading the batch payload "
        f"(no closing '--{boundary}--')."
    )


def split_head(block: bytes) -> tuple[list[str], bytes]:
    """Header lines and the rest of a MIME part or HTTP message (CRLF or LF)."""
    match = re.search(rb"\r?\n\r?\n", block)
    if match is None:
        head, rest = block, b""
    else:
        head, rest = block[: match.start()], block[match.end() :]
    lines = head.decode("latin-1").splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines, rest


def parse_headers(lines: Iterable[str]) -> dict[str, str]:
    """``Name: value`` lines into a lower-case dict; a line without colon is refused."""
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BatchFormatError(
                f"The message header '{line}' is invalid. The header value must be of the "
                "format '<header name>: <header value>'."
            )
        key = name.strip().lower()
        if key in headers:
            raise BatchFormatError(
                f"The header '{name.strip()}' was specified multiple times. Each header must "
                "appear only once in a batch part."
            )
        headers[key] = value.strip()
    return headers


def read_part(raw: bytes) -> Part:
    """A MIME part: headers, then content; ``Content-Type`` is required."""
    lines, content = split_head(raw)
    headers = parse_headers(lines)
    if "content-type" not in headers:
        raise BatchFormatError(
            "The 'Content-Type' header is missing. The 'Content-Type' header must be "
            "specified for each MIME part of a batch message."
        )
    return Part(headers, content)


def read_request(part: Part) -> HttpRequestPart:
    """The HTTP request of an ``application/http`` part."""
    encoding = part.headers.get("content-transfer-encoding", "")
    if encoding.lower() != "binary":
        raise BatchFormatError(
            "A missing or invalid 'Content-Transfer-Encoding' header was found. The "
            "'Content-Transfer-Encoding' header must be specified for each batch operation, "
            "and its value must be 'binary'."
        )
    lines, body = split_head(part.content)
    if not lines:
        raise BatchFormatError("A batch operation has no request line.")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not all(request_line):
        raise BatchFormatError(
            f"The request line '{lines[0]}' is invalid. The request line at the start of each "
            "operation must be of the format 'HttpMethod RequestUrl HttpVersion'."
        )
    method, target, version = request_line
    if version != "HTTP/1.1":
        raise BatchFormatError(
            f"The HTTP version '{version}' used in a batch operation request or response is "
            "not valid. The value must be 'HTTP/1.1'."
        )
    headers = parse_headers(lines[1:])
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BatchFormatError(
                f"The content length header '{length}' is not valid. The content length header "
                "must be a valid Int32 literal and must be greater than or equal to 0."
            )
        body = body[: int(length)]
    else:
        body = body.rstrip(b"\r\n")
    return HttpRequestPart(method.upper(), target, headers, body)


def header_name(name: str) -> str:
    """``odata-entityid`` → ``OData-EntityId``: how Dataverse spells response headers."""
    return _HEADER_CASE.get(name, "-".join(word.capitalize() for word in name.split("-")))


def http_part(response: WebApiResponse, content_id: str | None = None) -> bytes:
    """An ``application/http`` part holding ``response``."""
    head = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(b"Content-ID: " + content_id.encode("latin-1"))
    status = f"HTTP/1.1 {response.status} {response.reason}".encode("latin-1")
    lines = [status]
    lines += [f"{header_name(k)}: {v}".encode("latin-1") for k, v in response.headers.items()]
    message = CRLF.join(lines) + CRLF + CRLF + response.body
    return CRLF.join(head) + CRLF + CRLF + message


def multipart(parts: Iterable[bytes], boundary: str) -> bytes:
    """``parts`` framed by ``boundary``, with the closing delimiter."""
    delimiter = b"--" + boundary.encode("latin-1")
    body = b"".join(delimiter + CRLF + part + CRLF for part in parts)
    return body + delimiter + b"--" + CRLF


def changeset_part(parts: Iterable[bytes], boundary: str) -> bytes:
    """A nested ``multipart/mixed`` part holding a change set's responses."""
    head = f"Content-Type: multipart/mixed; boundary={boundary}".encode("latin-1")
    return head + CRLF + CRLF + multipart(parts, boundary).removesuffix(CRLF)
