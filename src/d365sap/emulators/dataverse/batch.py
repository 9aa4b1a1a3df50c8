"""``POST $batch``: OData v4 batches of the Dataverse Web API.

A batch is multipart/mixed; each part is one request (``application/http``) or a change set
(a nested multipart/mixed of modifying requests). Dataverse's rules, as Microsoft documents
them:

- Requests run in order; at most 1000 in a batch, no batch inside a batch, no GET in a
  change set.
- A change set is atomic: if one of its requests fails, everything it did is undone and the
  change set is answered by that one error response instead of a nested multipart.
- ``Content-ID`` lets a later request of the same change set use ``$1`` for the URL of the
  record an earlier one created, in its URL (``PATCH $1``, ``$1/lastname``) or as an
  ``@odata.bind``/``@odata.id`` value; referencing an undeclared id refuses the whole batch
  with "Content-ID Reference: '$1' does not exist in the batch context."
- Without ``Prefer: odata.continue-on-error`` the batch stops at the first failure and its
  status is that failure's; with it every request runs and the batch answers 200.

The whole payload is read and checked before anything runs, so a malformed batch changes
nothing. The module knows nothing of tables: it calls ``handle(request)`` for each operation
and wraps change sets in ``atomic()`` (the store's transaction, which undoes every change
made inside when an exception leaves it).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from d365sap.emulators.dataverse.batch_multipart import (
    BatchFormatError,
    HttpRequestPart,
    Part,
    boundary_of,
    changeset_part,
    http_part,
    multipart,
    read_part,
    read_request,
    split_multipart,
)
from d365sap.emulators.dataverse.messages import MODIFYING, WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.query.prefer import parse_prefer

MAX_REQUESTS = 1000
ODATA_ERROR = "0x80060888"
_REFERENCE = re.compile(r"\$([A-Za-z0-9_.\-]+)((?:/.*)?)", re.DOTALL)

Handler = Callable[[WebApiRequest], WebApiResponse]
Atomic = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class Operation:
    """One request of the batch, ``content_id`` from its part (``None`` if absent)."""

    request: HttpRequestPart
    content_id: str | None


@dataclass(frozen=True)
class ChangeSet:
    """Requests that succeed or fail together."""

    operations: tuple[Operation, ...]


class _ChangeSetFailedError(Exception):
    def __init__(self, response: WebApiResponse, content_id: str | None) -> None:
        super().__init__(response.status)
        self.response = response
        self.content_id = content_id


def _refuse(message: str) -> WebApiResponse:
    return WebApiResponse.error(400, ODATA_ERROR, message)


def _missing_reference(name: str) -> BatchFormatError:
    return BatchFormatError(f"Content-ID Reference: '${name}' does not exist in the batch context.")


def _references(operation: Operation) -> list[str]:
    """Content-IDs ``operation`` refers to in its URL or its ``@odata.bind``/``@odata.id``."""
    found = []
    match = _REFERENCE.fullmatch(operation.request.target)
    if match:
        found.append(match.group(1))
    for value in _bind_values(_json_body(operation.request)):
        match = _REFERENCE.fullmatch(value)
        if match:
            found.append(match.group(1))
    return found


def _json_body(request: HttpRequestPart) -> object:
    if not request.body.strip().startswith(b"{"):
        return None
    try:
        return json.loads(request.body)
    except ValueError:
        return None  # the handler refuses it with the Web API's own error


def _bind_values(document: object) -> list[str]:
    if not isinstance(document, dict):
        return []
    values: list[str] = []
    for key, value in document.items():
        if key.endswith("@odata.bind") or key == "@odata.id":
            items = value if isinstance(value, list) else [value]
            values += [item for item in items if isinstance(item, str)]
        elif isinstance(value, dict | list):
            for nested in value if isinstance(value, list) else [value]:
                values += _bind_values(nested)
    return values


def _check_references(operations: list[Operation], in_change_set: bool) -> None:
    declared: set[str] = set()
    for operation in operations:
        for name in _references(operation):
            if name not in declared and (name.isdigit() or in_change_set):
                raise _missing_reference(name)
        if operation.content_id is not None and in_change_set:
            if operation.content_id in declared:
                raise BatchFormatError(
                    f"The content ID '{operation.content_id}' was found more than once in the "
                    "same change set. Content IDs have to be unique across all operations of a "
                    "change set."
                )
            declared.add(operation.content_id)


def _is_nested_batch(target: str) -> bool:
    return urlsplit(target).path.rstrip("/").endswith("$batch")


def _operation(part: Part, in_change_set: bool) -> Operation:
    request = read_request(part)
    if _is_nested_batch(request.target):
        raise BatchFormatError("Batch requests can't contain other batch requests.")
    if in_change_set and request.method not in MODIFYING:
        raise BatchFormatError(
            f"An invalid HTTP method '{request.method}' was detected for a request in a change "
            "set. Requests in change sets only support the HTTP methods 'POST', 'PUT', "
            "'DELETE', and 'PATCH'."
        )
    return Operation(request, part.headers.get("content-id"))


def _change_set(part: Part) -> ChangeSet:
    operations = []
    for raw in split_multipart(part.content, boundary_of(part.headers["content-type"])):
        inner = read_part(raw)
        kind = inner.headers["content-type"].split(";")[0].strip().lower()
        if kind == "multipart/mixed":
            raise BatchFormatError("Nested change sets in a batch payload are not supported.")
        if kind != "application/http":
            raise BatchFormatError(
                f"The content type '{kind}' of a change set part is not valid; it must be "
                "'application/http'."
            )
        operations.append(_operation(inner, in_change_set=True))
    if len(operations) > MAX_REQUESTS:
        raise BatchFormatError(
            "The current change set contains too many operations. A maximum number of "
            f"'{MAX_REQUESTS}' operations are allowed in a change set."
        )
    _check_references(operations, in_change_set=True)
    return ChangeSet(tuple(operations))


def parse_batch(body: bytes, content_type: str | None) -> list[Operation | ChangeSet]:
    """The batch's requests and change sets, checked; raises :class:`BatchFormatError`."""
    items: list[Operation | ChangeSet] = []
    for raw in split_multipart(body, boundary_of(content_type)):
        part = read_part(raw)
        kind = part.headers["content-type"].split(";")[0].strip().lower()
        if kind == "multipart/mixed":
            items.append(_change_set(part))
        elif kind == "application/http":
            items.append(_operation(part, in_change_set=False))
        else:
            raise BatchFormatError(
                f"The content type '{kind}' of a batch part is not valid; it must be "
                "'application/http' or 'multipart/mixed' (a change set)."
            )
    total = sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)
    if total > MAX_REQUESTS:
        raise BatchFormatError(
            "The current batch message contains too many parts. A maximum number of "
            f"'{MAX_REQUESTS}' query operations and change sets are allowed in a batch message "
            f"(this one has {total} requests)."
        )
    _check_references([i for i in items if isinstance(i, Operation)], in_change_set=False)
    return items


def _substitute(value: str, locations: dict[str, str]) -> str:
    match = _REFERENCE.fullmatch(value)
    if match is None or match.group(1) not in locations:
        return value
    return locations[match.group(1)] + match.group(2)


def _substitute_body(document: object, locations: dict[str, str]) -> object:
    if isinstance(document, list):
        return [_substitute_body(item, locations) for item in document]
    if not isinstance(document, dict):
        return document
    out: dict[str, object] = {}
    for key, value in document.items():
        if key.endswith("@odata.bind") or key == "@odata.id":
            if isinstance(value, str):
                value = _substitute(value, locations)
            elif isinstance(value, list):
                value = [_substitute(v, locations) if isinstance(v, str) else v for v in value]
        else:
            value = _substitute_body(value, locations)
        out[key] = value
    return out


def _web_request(
    outer: WebApiRequest,
    operation: Operation,
    locations: dict[str, str],
    *,
    in_change_set: bool = False,
) -> WebApiRequest:
    """The operation as a Web API request, ``$n`` references replaced by record URLs."""
    part = operation.request
    references = _references(operation) if in_change_set else []
    for name in references:
        if name not in locations:  # declared, but its request gave no record URL
            raise _missing_reference(name)
    target = _substitute(part.target, locations)
    body = part.body
    if references:
        document = _json_body(part)
        if document is not None:
            body = json.dumps(_substitute_body(document, locations)).encode("utf-8")
    url = urlsplit(target)
    root = urlsplit(outer.service_root).path.rstrip("/") + "/"
    path = url.path
    if path.startswith(root):
        path = path[len(root) :]
    elif path.startswith("/") or url.netloc:
        raise BatchFormatError(
            f"The request URL '{part.target}' of a batch operation is not below the service "
            f"root '{outer.service_root}'."
        )
    return replace(
        outer,
        method=part.method,
        path=path,
        query=url.query,
        headers=dict(part.headers),
        body=body,
    )


def _location(response: WebApiResponse) -> str | None:
    return response.headers.get("location") or response.headers.get("odata-entityid")


def _run_change_set(
    outer: WebApiRequest, change_set: ChangeSet, handle: Handler, atomic: Atomic
) -> tuple[bytes, WebApiResponse | None]:
    """The change set's response part, and its error response if it failed."""
    answered: list[bytes] = []
    locations: dict[str, str] = {}
    try:
        with atomic():
            for operation in change_set.operations:
                try:
                    request = _web_request(outer, operation, locations, in_change_set=True)
                except BatchFormatError as error:
                    raise _ChangeSetFailedError(_refuse(str(error)), operation.content_id) from None
                response = handle(request)
                if response.status >= 400:
                    raise _ChangeSetFailedError(response, operation.content_id)
                location = _location(response)
                if operation.content_id is not None and location:
                    locations[operation.content_id] = location
                answered.append(http_part(response, operation.content_id))
    except _ChangeSetFailedError as failed:
        return http_part(failed.response, failed.content_id), failed.response
    return changeset_part(answered, f"changesetresponse_{uuid.uuid4()}"), None


def handle_batch(request: WebApiRequest, handle: Handler, atomic: Atomic) -> WebApiResponse:
    """Answer ``POST $batch``: run every request through ``handle``, change sets inside
    ``atomic()``."""
    if request.method != "POST":
        return WebApiResponse.error(405, ODATA_ERROR, "The $batch resource only supports POST.")
    try:
        items = parse_batch(request.body, request.header("content-type"))
    except BatchFormatError as error:
        return _refuse(str(error))
    continue_on_error = parse_prefer(request.header("prefer")).continue_on_error
    parts: list[bytes] = []
    status = 200
    for item in items:
        if isinstance(item, ChangeSet):
            part, failure = _run_change_set(request, item, handle, atomic)
        else:
            try:
                response = handle(_web_request(request, item, {}))
            except BatchFormatError as error:
                response = _refuse(str(error))
            part, failure = http_part(response), response if response.status >= 400 else None
        parts.append(part)
        if failure is not None and not continue_on_error:
            status = failure.status
            break
    boundary = f"batchresponse_{uuid.uuid4()}"
    return WebApiResponse(
        status,
        {"content-type": f"multipart/mixed; boundary={boundary}", "odata-version": "4.0"},
        multipart(parts, boundary),
    )
