"""``$batch`` for the Dataverse Web API: operations in, multipart/mixed out, and back again.

A batch is one HTTP request (one request against the service protection limits) holding up to
1000 operations. Operations outside a change set run one by one; a :class:`ChangeSet` is
atomic: if one of its operations fails, Dataverse undoes the others and answers the whole
change set with that one error (naming it by its ``Content-ID``). Without
``Prefer: odata.continue-on-error`` the batch stops at the first failure.

This module only frames and reads: :func:`encode` writes the multipart body, :func:`decode`
splits the answer into one :class:`PartReply` per answered request, and :func:`settle` lines
the replies up with the operations sent, so every operation gets a :class:`BatchResult`:
``applied``, ``failed``, ``rolled_back`` (its change set failed elsewhere) or ``not_run`` (the
batch stopped before it).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from d365sap.connectors.dataverse_errors import fault_error, parse_fault
from d365sap.connectors.dataverse_keys import RowKey, check_name, row_path
from d365sap.errors import PermanentError, ValidationError

CRLF = b"\r\n"
MAX_OPERATIONS = 1000
_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
ResultState = Literal["applied", "failed", "rolled_back", "not_run"]


@dataclass(frozen=True)
class BatchOperation:
    """One request of a batch; build it with the class methods."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, entity_set: str, values: Mapping[str, Any]) -> BatchOperation:
        """``POST entity_set``."""
        return cls("POST", check_name(entity_set, "entity_set"), values)

    @classmethod
    def update(
        cls, entity_set: str, key: RowKey, values: Mapping[str, Any], *, etag: str | None = None
    ) -> BatchOperation:
        """``PATCH`` an existing row (``If-Match``: the ETag, or ``*`` so it never creates)."""
        return cls("PATCH", row_path(entity_set, key), values, {"If-Match": etag or "*"})

    @classmethod
    def upsert(
        cls,
        entity_set: str,
        key: RowKey,
        values: Mapping[str, Any],
        *,
        create_only: bool = False,
        update_only: bool = False,
    ) -> BatchOperation:
        """``PATCH`` by key: update the row, or create it when no row has the key."""
        return cls(
            "PATCH", row_path(entity_set, key), values, upsert_headers(create_only, update_only)
        )

    @classmethod
    def delete(cls, entity_set: str, key: RowKey, *, etag: str | None = None) -> BatchOperation:
        """``DELETE`` a row, conditional on ``etag`` when given."""
        headers = {"If-Match": etag} if etag else {}
        return cls("DELETE", row_path(entity_set, key), None, headers)

    @classmethod
    def read(cls, entity_set: str, key: RowKey) -> BatchOperation:
        """``GET`` one row (not allowed inside a change set)."""
        return cls("GET", row_path(entity_set, key))


@dataclass(frozen=True)
class ChangeSet:
    """Operations that succeed or fail together (no reads)."""

    operations: tuple[BatchOperation, ...]

    def __init__(self, operations: Sequence[BatchOperation]) -> None:
        object.__setattr__(self, "operations", tuple(operations))
        if not self.operations:
            raise ValidationError("change_set", "a change set needs at least one operation")
        for index, operation in enumerate(self.operations):
            if operation.method == "GET":
                raise ValidationError(
                    f"change_set[{index}]", "reads are not allowed in a change set"
                )


BatchItem = BatchOperation | ChangeSet


@dataclass(frozen=True)
class PartReply:
    """One answered request of a batch reply."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_id: str | None
    in_change_set: bool


@dataclass(frozen=True)
class BatchResult:
    """What became of one operation.

    ``error`` is the classified error of a failed operation (the change set's error for a
    rolled-back one); ``row`` the JSON answer of a read or of ``return=representation``;
    ``entity_id`` the URL of the row written (``OData-EntityId``).
    """

    operation: BatchOperation
    state: ResultState
    status: int | None = None
    entity_id: str | None = None
    row: dict[str, Any] | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """The operation was applied."""
        return self.state == "applied"


def upsert_headers(create_only: bool, update_only: bool) -> dict[str, str]:
    """``If-None-Match: *`` (never update) or ``If-Match: *`` (never create) for an upsert."""
    if create_only and update_only:
        raise ValidationError("upsert", "create_only and update_only exclude each other")
    if create_only:
        return {"If-None-Match": "*"}
    if update_only:
        return {"If-Match": "*"}
    return {}


def count(items: Sequence[BatchItem]) -> int:
    """Operations in ``items`` (a change set counts each of its operations)."""
    return sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)


def chunks(items: Sequence[BatchItem], size: int) -> Iterator[list[BatchItem]]:
    """``items`` in batches of at most ``size`` operations; a change set is never split."""
    if not 1 <= size <= MAX_OPERATIONS:
        raise ValidationError("chunk_size", f"must be between 1 and {MAX_OPERATIONS}")
    current: list[BatchItem] = []
    held = 0
    for index, item in enumerate(items):
        weight = count([item])
        if weight > size:
            raise ValidationError(
                f"operations[{index}]", f"a change set of {weight} operations exceeds {size}"
            )
        if held + weight > size:
            yield current
            current, held = [], 0
        current.append(item)
        held += weight
    if current:
        yield current


# Encoding --------------------------------------------------------------------------------


def _request_part(operation: BatchOperation, api_path: str, content_id: str | None) -> bytes:
    head = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}".encode("ascii"))
    lines = [f"{operation.method} {api_path}{operation.path} HTTP/1.1"]
    body = b""
    headers = dict(operation.headers)
    if operation.body is not None:
        body = json.dumps(operation.body, ensure_ascii=False).encode("utf-8")
        headers.setdefault("Content-Type", "application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    message = CRLF.join(line.encode("utf-8") for line in lines) + CRLF + CRLF + body
    return CRLF.join(head) + CRLF + CRLF + message


def _frame(parts: Sequence[bytes], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode("ascii")
    return b"".join(delimiter + CRLF + part + CRLF for part in parts) + delimiter + b"--" + CRLF


def encode(items: Sequence[BatchItem], api_path: str) -> tuple[bytes, str]:
    """The multipart body of a batch and its content type.

    ``api_path`` is the service root's path (``/api/data/v9.2/``); operations in a change set
    get ``Content-ID`` 1, 2, … so a failure can be traced to one of them.
    """
    boundary = f"batch_{uuid.uuid4()}"
    parts: list[bytes] = []
    for item in items:
        if isinstance(item, ChangeSet):
            inner = f"changeset_{uuid.uuid4()}"
            members = [
                _request_part(op, api_path, str(n)) for n, op in enumerate(item.operations, 1)
            ]
            head = f"Content-Type: multipart/mixed; boundary={inner}".encode("ascii")
            parts.append(head + CRLF + CRLF + _frame(members, inner).removesuffix(CRLF))
        else:
            parts.append(_request_part(item, api_path, None))
    return _frame(parts, boundary), f"multipart/mixed; boundary={boundary}"


# Decoding --------------------------------------------------------------------------------


def boundary_of(content_type: str) -> str | None:
    """The boundary of a multipart content type, ``None`` for anything else."""
    if not content_type.lower().startswith("multipart/"):
        return None
    match = _BOUNDARY.search(content_type)
    return (match.group(1) or match.group(2)).strip() if match else None


def _split(body: bytes, boundary: str) -> list[bytes]:
    delimiter = re.compile(
        rb"(?:^|\r?\n)--" + re.escape(boundary.encode("latin-1")) + rb"(--)?[ \t]*(?:\r?\n|$)"
    )
    found = list(delimiter.finditer(body))
    parts: list[bytes] = []
    for current, following in itertools.pairwise(found):
        if current.group(1):
            break
        parts.append(body[current.end() : following.start()])
    if not found or not any(match.group(1) for match in found):
        raise PermanentError("Dataverse $batch reply is not a complete multipart body")
    return parts


def _head(block: bytes) -> tuple[dict[str, str], list[str], bytes]:
    match = re.search(rb"\r?\n\r?\n", block)
    head, rest = (block[: match.start()], block[match.end() :]) if match else (block, b"")
    lines = [line for line in head.decode("latin-1").splitlines() if line.strip()]
    headers: dict[str, str] = {}
    other: list[str] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and " " not in name.strip():
            headers[name.strip().lower()] = value.strip()
        else:
            other.append(line)
    return headers, other, rest


def _http_reply(part: bytes, in_change_set: bool) -> PartReply:
    part_headers, _, message = _head(part)
    headers, status_lines, body = _head(message)
    status_line = status_lines[0] if status_lines else ""
    pieces = status_line.split(" ", 2)
    if len(pieces) < 2 or not pieces[1].isdigit():
        raise PermanentError(f"Dataverse $batch reply part has no status line: {status_line!r}")
    return PartReply(
        int(pieces[1]), headers, body.rstrip(b"\r\n"), part_headers.get("content-id"), in_change_set
    )


def decode(body: bytes, content_type: str) -> list[PartReply]:
    """The replies of a multipart batch answer, change sets flattened, in order."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise PermanentError(f"Dataverse $batch reply is not multipart: {content_type!r}")
    replies: list[PartReply] = []
    for part in _split(body, boundary):
        headers, _, content = _head(part)
        inner = boundary_of(headers.get("content-type", ""))
        if inner is None:
            replies.append(_http_reply(part, in_change_set=False))
            continue
        replies += [_http_reply(member, in_change_set=True) for member in _split(content, inner)]
    return replies


def _result(operation: BatchOperation, reply: PartReply) -> BatchResult:
    row: dict[str, Any] | None = None
    if reply.body.strip().startswith(b"{"):
        try:
            parsed = json.loads(reply.body)
        except ValueError:
            parsed = None
        row = parsed if isinstance(parsed, dict) else None
    entity_id = reply.headers.get("odata-entityid") or reply.headers.get("location")
    if reply.status < 400:
        return BatchResult(operation, "applied", reply.status, entity_id, row)
    return BatchResult(operation, "failed", reply.status, None, row, _error(operation, reply))


def _error(operation: BatchOperation, reply: PartReply) -> Exception:
    response = httpx2.Response(reply.status, headers=dict(reply.headers), content=reply.body)
    what = f"$batch {operation.method} {operation.path}"
    return fault_error(response, parse_fault(reply.body, response.reason_phrase), what=what)


def settle(items: Sequence[BatchItem], replies: Sequence[PartReply]) -> list[BatchResult]:
    """One result per operation sent, from the replies Dataverse gave (in order)."""
    results: list[BatchResult] = []
    pending = list(replies)
    for item in items:
        if not pending:
            operations = item.operations if isinstance(item, ChangeSet) else (item,)
            results += [BatchResult(op, "not_run") for op in operations]
            continue
        if not isinstance(item, ChangeSet):
            results.append(_result(item, pending.pop(0)))
            continue
        first = pending[0]
        if first.status >= 400 and not first.in_change_set:
            results += _failed_change_set(item, pending.pop(0))
            continue
        for operation in item.operations:
            reply = pending.pop(0) if pending else None
            results.append(
                _result(operation, reply) if reply else BatchResult(operation, "not_run")
            )
    return results


def _failed_change_set(change_set: ChangeSet, reply: PartReply) -> list[BatchResult]:
    """The one error answering a change set: its operation failed, the others were undone."""
    content_id = reply.content_id or ""
    culprit = int(content_id) - 1 if content_id.isdigit() else None
    results = []
    for index, operation in enumerate(change_set.operations):
        error = _error(operation, reply)
        if culprit is None or index == culprit:
            results.append(BatchResult(operation, "failed", reply.status, None, None, error))
        else:
            results.append(BatchResult(operation, "rolled_back", reply.status, None, None, error))
    return results
