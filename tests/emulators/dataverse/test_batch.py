"""$batch against a fake in-memory Web API: change sets (atomic, Content-ID references),
stop at the first failure or continue on error, and the refusals of a malformed batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from d365sap.emulators.dataverse.batch import MAX_REQUESTS, handle_batch
from d365sap.emulators.dataverse.batch_multipart import (
    boundary_of,
    read_part,
    split_head,
    split_multipart,
)
from d365sap.emulators.dataverse.messages import Caller, WebApiRequest, WebApiResponse

ROOT = "https://org.example.com/api/data/v9.2/"
CALLER = Caller("user-1", "client-1")


@dataclass
class FakeWebApi:
    """Tasks and contacts in dicts; ``atomic`` restores a snapshot when an exception leaves."""

    tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"tasks": {}, "contacts": {}, "accounts": {}}
    )
    seen: list[WebApiRequest] = field(default_factory=list)
    counter: int = 0

    @contextmanager
    def atomic(self) -> Iterator[None]:
        snapshot = {
            name: {k: dict(v) for k, v in rows.items()} for name, rows in self.tables.items()
        }
        try:
            yield
        except BaseException:
            self.tables = snapshot
            raise

    def handle(self, request: WebApiRequest) -> WebApiResponse:
        self.seen.append(request)
        entity_set, _, key = request.path.partition("(")
        rows = self.tables.get(entity_set)
        if rows is None:
            return WebApiResponse.error(
                404, "0x80060888", f"Resource not found for the segment '{entity_set}'."
            )
        key, _, prop = key.partition(")")
        prop = prop.lstrip("/")
        if request.method == "POST" and not key:
            body = json.loads(request.body)
            if len(body.get("subject", "")) > 200:
                return WebApiResponse.error(
                    400,
                    "0x80044331",
                    "A validation error occurred.  The length of the 'subject' attribute of the "
                    "'task' entity exceeded the maximum allowed length of '200'.",
                )
            self.counter += 1
            row_id = str(uuid.UUID(int=self.counter))
            rows[row_id] = body
            url = f"{request.service_root}{entity_set}({row_id})"
            return WebApiResponse(
                204, {"odata-version": "4.0", "location": url, "odata-entityid": url}
            )
        if key not in rows:
            return WebApiResponse.error(
                404, "", f"{entity_set[:-1]} With Id = {key} Does Not Exist"
            )
        if request.method == "PATCH":
            rows[key].update(json.loads(request.body))
            return WebApiResponse(204, {"odata-version": "4.0"})
        if request.method == "PUT" and prop:
            rows[key][prop] = json.loads(request.body)["value"]
            return WebApiResponse(204, {"odata-version": "4.0"})
        if request.method == "DELETE":
            del rows[key]
            return WebApiResponse(204, {"odata-version": "4.0"})
        if request.method == "GET":
            return WebApiResponse.json(200, {"value": rows[key]})
        return WebApiResponse.error(405, "0x80060888", "Method not allowed")

    def list(self, entity_set: str) -> list[dict[str, Any]]:
        if entity_set == "all":
            return [row for rows in self.tables.values() for row in rows.values()]
        return list(self.tables[entity_set].values())


def op(
    method: str,
    url: str,
    body: Any = None,
    content_id: str | None = None,
    headers: dict[str, str] | None = None,
    newline: str = "\r\n",
) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    lines = [*head, "", f"{method} {url} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json; type=entry", "", json.dumps(body)]
    else:
        lines += ["", ""]
    return newline.join(lines)


def changeset(parts: list[str], boundary: str = "changeset_1") -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}'


def batch(parts: list[str], boundary: str = "batch_abc", newline: str = "\r\n") -> bytes:
    body = "".join(f"--{boundary}{newline}{p}{newline}" for p in parts) + f"--{boundary}--{newline}"
    return body.encode("utf-8")


def send(
    api: FakeWebApi,
    body: bytes,
    prefer: str | None = None,
    content_type: str = 'multipart/mixed; boundary="batch_abc"',
) -> WebApiResponse:
    headers = {"content-type": content_type}
    if prefer:
        headers["prefer"] = prefer
    request = WebApiRequest("POST", "$batch", "", headers, body, ROOT, CALLER)
    return handle_batch(request, api.handle, api.atomic)


@dataclass
class Answer:
    status: int
    reason_line: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


def answers(response: WebApiResponse) -> list[Answer | list[Answer]]:
    """The response parts: an Answer per request, a list per successful change set."""
    out: list[Answer | list[Answer]] = []
    for raw in split_multipart(response.body, boundary_of(response.headers["content-type"])):
        part = read_part(raw)
        if part.headers["content-type"].startswith("multipart/mixed"):
            inner = split_multipart(part.content, boundary_of(part.headers["content-type"]))
            out.append([_answer(read_part(r).headers, read_part(r).content) for r in inner])
        else:
            out.append(_answer(part.headers, part.content))
    return out


def _answer(part_headers: Any, content: bytes) -> Answer:
    lines, body = split_head(content)
    status_line = lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return Answer(
        int(status_line.split()[1]), status_line, headers, body, part_headers.get("content-id")
    )


TASK = {"subject": "Task in batch", "regardingobjectid_account_task@odata.bind": "accounts(1)"}


def test_requests_without_change_set_run_in_order_with_odata_v4_framing() -> None:
    api = FakeWebApi()
    body = batch(
        [
            op("POST", "/api/data/v9.2/tasks", TASK),
            op("POST", f"{ROOT}tasks", TASK),
            op("GET", f"tasks({uuid.UUID(int=1)})?$select=subject"),
        ]
    )
    response = send(api, body)
    assert response.status == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert response.headers["odata-version"] == "4.0"
    first, second, got = answers(response)
    assert isinstance(first, Answer) and isinstance(second, Answer) and isinstance(got, Answer)
    assert first.reason_line == "HTTP/1.1 204 No Content"
    assert first.headers["OData-Version"] == "4.0"
    assert first.headers["OData-EntityId"] == f"{ROOT}tasks({uuid.UUID(int=1)})"
    assert got.status == 200
    assert json.loads(got.body)["value"]["subject"] == "Task in batch"
    assert [r.path for r in api.seen] == ["tasks", "tasks", f"tasks({uuid.UUID(int=1)})"]
    assert api.seen[2].query == "$select=subject"
    assert all(r.caller == CALLER and r.service_root == ROOT for r in api.seen)
    assert response.body.endswith(b"--\r\n")


def test_change_set_answers_with_a_nested_multipart_carrying_content_ids() -> None:
    api = FakeWebApi()
    body = batch(
        [
            changeset([op("POST", "tasks", TASK, "1"), op("POST", "tasks", TASK, "2")]),
            op("GET", f"tasks({uuid.UUID(int=2)})"),
        ]
    )
    response = send(api, body)
    assert response.status == 200
    nested, got = answers(response)
    assert isinstance(nested, list)
    assert [(a.status, a.content_id) for a in nested] == [(204, "1"), (204, "2")]
    assert isinstance(got, Answer) and got.status == 200
    assert b"Content-Type: multipart/mixed; boundary=changesetresponse_" in response.body


def test_a_failing_request_undoes_its_change_set_and_stops_the_batch() -> None:
    api = FakeWebApi()
    long_task = {"subject": "x" * 201}
    body = batch(
        [
            changeset(
                [
                    op("POST", "tasks", TASK, "1"),
                    op("POST", "tasks", long_task, "2"),
                    op("POST", "tasks", TASK, "3"),
                ]
            ),
            op("POST", "contacts", {"lastname": "never"}),
        ]
    )
    response = send(api, body)
    assert response.status == 400
    (failure,) = answers(response)
    assert isinstance(failure, Answer)
    assert failure.status == 400
    assert failure.content_id == "2"
    assert json.loads(failure.body)["error"]["code"] == "0x80044331"
    assert api.list("all") == []  # the first task was undone, the contact never sent
    assert len(api.seen) == 2


def test_without_continue_on_error_the_batch_stops_at_the_first_failure() -> None:
    api = FakeWebApi()
    body = batch(
        [
            op("POST", "tasks", TASK),
            op("PATCH", "tasks(nope)", {"subject": "a"}),
            op("POST", "tasks", TASK),
        ]
    )
    response = send(api, body)
    assert response.status == 404
    created, failed = answers(response)
    assert isinstance(created, Answer) and created.status == 204
    assert isinstance(failed, Answer) and failed.status == 404
    assert len(api.list("tasks")) == 1


def test_continue_on_error_runs_every_request_and_answers_200() -> None:
    api = FakeWebApi()
    body = batch(
        [
            op("POST", "tasks", {"subject": "y" * 300}),
            changeset([op("POST", "tasks", TASK, "1"), op("DELETE", "tasks(missing)", None, "2")]),
            op("POST", "tasks", TASK),
            op("POST", "tasks", TASK),
        ]
    )
    response = send(api, body, prefer="odata.continue-on-error")
    assert response.status == 200
    statuses = [a.status for a in answers(response) if isinstance(a, Answer)]
    assert statuses == [400, 404, 204, 204]
    assert len(api.list("tasks")) == 2  # the change set's task was undone


def test_content_id_references_in_url_and_body() -> None:
    api = FakeWebApi()
    body = batch(
        [
            changeset(
                [
                    op("POST", "contacts", {"firstname": "First"}, "1"),
                    op("PUT", "$1/lastname", {"value": "BBBBB"}, "2"),
                    op("POST", "accounts", {"name": "A"}, "3"),
                    op("PATCH", "$3", {"primarycontactid@odata.bind": "$1"}, "4"),
                    op(
                        "POST",
                        "tasks",
                        {
                            "subject": "s",
                            "regardingobjectid_account_task@odata.bind": "$3",
                            "nested": {"@odata.id": "$1"},
                            "list@odata.bind": ["$1", "x"],
                        },
                        "5",
                    ),
                ]
            )
        ]
    )
    response = send(api, body)
    assert response.status == 200
    contact_url = f"{ROOT}contacts({uuid.UUID(int=1)})"
    account_url = f"{ROOT}accounts({uuid.UUID(int=2)})"
    assert api.list("contacts") == [{"firstname": "First", "lastname": "BBBBB"}]
    assert api.list("accounts") == [{"name": "A", "primarycontactid@odata.bind": contact_url}]
    assert api.list("tasks") == [
        {
            "subject": "s",
            "regardingobjectid_account_task@odata.bind": account_url,
            "nested": {"@odata.id": contact_url},
            "list@odata.bind": [contact_url, "x"],
        }
    ]
    assert api.seen[1].path == f"contacts({uuid.UUID(int=1)})/lastname"


@pytest.mark.parametrize(
    "parts",
    [
        [
            changeset(
                [
                    op("POST", "tasks", {"x@odata.bind": "$1"}, "2"),
                    op("POST", "accounts", {"name": "Q"}, "1"),
                ]
            )
        ],
        [changeset([op("PATCH", "$7", {"a": 1}, "1")])],
        [op("POST", "tasks", TASK, "1"), changeset([op("PATCH", "$1", {"a": 1}, "2")])],
        [op("PATCH", "$1", {"a": 1})],
    ],
)
def test_undeclared_content_id_refuses_the_whole_batch(parts: list[str]) -> None:
    api = FakeWebApi()
    response = send(api, batch(parts))
    assert response.status == 400
    message = json.loads(response.body)["error"]["message"]
    assert message.startswith("Content-ID Reference: '$")
    assert message.endswith("' does not exist in the batch context.")
    assert api.seen == []


def test_a_reference_without_location_fails_its_change_set() -> None:
    api = FakeWebApi()
    api.tables["tasks"]["x"] = {}
    body = batch(
        [changeset([op("PATCH", "tasks(x)", {"a": 1}, "1"), op("PATCH", "$1", {"b": 2}, "2")])]
    )
    response = send(api, body)
    assert response.status == 400
    (failure,) = answers(response)
    assert isinstance(failure, Answer) and failure.content_id == "2"
    assert json.loads(failure.body)["error"]["message"] == (
        "Content-ID Reference: '$1' does not exist in the batch context."
    )
    assert api.tables["tasks"]["x"] == {}  # the first PATCH was undone


def test_non_reference_dollar_urls_pass_outside_change_sets() -> None:
    api = FakeWebApi()
    response = send(api, batch([op("GET", "$metadata")]))
    assert response.status == 404  # the fake has no $metadata; the batch itself accepted it
    assert api.seen[0].path == "$metadata"


def test_lf_line_endings_and_content_length_are_honoured() -> None:
    api = FakeWebApi()
    payload = json.dumps({"subject": "exact"})
    part = (
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        f"POST tasks HTTP/1.1\nContent-Type: application/json\nContent-Length: {len(payload)}\n\n"
        f"{payload}\n\n"
    )
    response = send(api, batch([part, op("POST", "tasks", TASK, newline="\n")], newline="\n"))
    assert response.status == 200
    assert api.list("tasks")[0] == {"subject": "exact"}
    assert len(api.list("tasks")) == 2


def test_inner_headers_are_the_parts_own() -> None:
    api = FakeWebApi()
    send(
        api,
        batch([op("GET", "tasks(x)", headers={"Prefer": "odata.maxpagesize=2"})]),
        prefer="odata.continue-on-error",
    )
    assert api.seen[0].headers == {"prefer": "odata.maxpagesize=2"}


def test_empty_batch_answers_an_empty_multipart() -> None:
    response = send(FakeWebApi(), b"--batch_abc--\r\n")
    assert response.status == 200
    assert answers(response) == []


def test_only_post_is_allowed() -> None:
    request = WebApiRequest("GET", "$batch", "", {}, b"", ROOT, CALLER)
    api = FakeWebApi()
    assert handle_batch(request, api.handle, api.atomic).status == 405


def refusal(body: bytes, content_type: str = 'multipart/mixed; boundary="batch_abc"') -> str:
    api = FakeWebApi()
    response = send(api, body, content_type=content_type)
    assert response.status == 400
    assert api.seen == []
    error = json.loads(response.body)["error"]
    assert error["code"] == "0x80060888"
    return str(error["message"])


def test_more_than_1000_requests_are_refused() -> None:
    assert MAX_REQUESTS == 1000
    assert (
        send(
            FakeWebApi(), batch([op("GET", "tasks(x)")] * 1000), prefer="odata.continue-on-error"
        ).status
        == 200
    )
    message = refusal(batch([op("GET", "tasks(x)")] * 1001))
    assert message.startswith(
        "The current batch message contains too many parts. A maximum number of '1000' query "
        "operations and change sets are allowed in a batch message"
    )
    mixed = [op("GET", "tasks(x)")] * 500 + [changeset([op("POST", "tasks", TASK)] * 501)]
    assert "too many parts" in refusal(batch(mixed))
    big = batch([changeset([op("POST", "tasks", TASK)] * 1001)])
    assert refusal(big) == (
        "The current change set contains too many operations. A maximum number of '1000' "
        "operations are allowed in a change set."
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            batch([changeset([op("GET", "tasks(x)")])]),
            "An invalid HTTP method 'GET' was detected for a request in a change set. Requests in "
            "change sets only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'.",
        ),
        (batch([op("POST", "$batch", {})]), "Batch requests can't contain other batch requests."),
        (
            batch([changeset([changeset([op("POST", "tasks", TASK)], "changeset_2")])]),
            "Nested change sets in a batch payload are not supported.",
        ),
        (
            batch([changeset([op("POST", "tasks", TASK, "1"), op("POST", "tasks", TASK, "1")])]),
            "The content ID '1' was found more than once in the same change set. Content IDs have "
            "to be unique across all operations of a change set.",
        ),
        (
            batch(["Content-Transfer-Encoding: binary\r\n\r\nGET tasks HTTP/1.1\r\n"]),
            "The 'Content-Type' header is missing. The 'Content-Type' header must be specified for "
            "each MIME part of a batch message.",
        ),
        (
            batch(["Content-Type: application/http\r\n\r\nGET tasks HTTP/1.1\r\n"]),
            "A missing or invalid 'Content-Transfer-Encoding' header was found. The "
            "'Content-Transfer-Encoding' header must be specified for each batch operation, and "
            "its value must be 'binary'.",
        ),
        (
            batch([op("GET", "tasks(x)").replace("GET tasks(x) HTTP/1.1", "GET tasks(x)")]),
            "The request line 'GET tasks(x)' is invalid. The request line at the start of each "
            "operation must be of the format 'HttpMethod RequestUrl HttpVersion'.",
        ),
        (
            batch([op("GET", "tasks(x)").replace("HTTP/1.1", "HTTP/1.0")]),
            "The HTTP version 'HTTP/1.0' used in a batch operation request or response is not "
            "valid. The value must be 'HTTP/1.1'.",
        ),
        (
            batch(
                [
                    op("GET", "tasks(x)", headers={"Broken header": ""}).replace(
                        "Broken header: ", "Broken header"
                    )
                ]
            ),
            "The message header 'Broken header' is invalid. The header value must be of the format "
            "'<header name>: <header value>'.",
        ),
        (
            batch([op("GET", "tasks(x)", headers={"A": "1", "a": "2"})]),
            "The header 'a' was specified multiple times. Each header must appear only once in a "
            "batch part.",
        ),
        (
            batch([op("POST", "tasks", TASK, headers={"Content-Length": "x"})]),
            "The content length header 'x' is not valid. The content length header must be a "
            "valid Int32 literal and must be greater than or equal to 0.",
        ),
        (
            batch(["Content-Type: text/plain\r\n\r\nhello"]),
            "The content type 'text/plain' of a batch part is not valid; it must be "
            "'application/http' or 'multipart/mixed' (a change set).",
        ),
        (
            batch([changeset(["Content-Type: text/plain\r\n\r\nhello"])]),
            "The content type 'text/plain' of a change set part is not valid; it must be "
            "'application/http'.",
        ),
        (
            b"--batch_abc\r\n" + op("GET", "tasks(x)").encode() + b"\r\n",
            "Encountered an unexpected end of input while reading the batch payload (no closing "
            "'--batch_abc--').",
        ),
        (b"hello", "The batch body has no part delimited by '--batch_abc'."),
        (
            batch(["Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"]),
            "A batch operation has no request line.",
        ),
    ],
)
def test_malformed_batches_are_refused_before_anything_runs(body: bytes, expected: str) -> None:
    assert refusal(body) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (
            "application/json",
            "The content type 'application/json' is not valid for a batch: it "
            "must be 'multipart/mixed' with a boundary parameter.",
        ),
        (
            "multipart/mixed",
            "The content type 'multipart/mixed' of the batch has no boundary parameter.",
        ),
    ],
)
def test_batch_content_type_is_checked(content_type: str, expected: str) -> None:
    assert refusal(batch([op("GET", "tasks(x)")]), content_type) == expected


def test_url_outside_the_service_root_fails_that_request() -> None:
    api = FakeWebApi()
    response = send(api, batch([op("GET", "https://elsewhere.example/other/tasks(x)")]))
    assert response.status == 400
    (failed,) = answers(response)
    assert isinstance(failed, Answer)
    assert "is not below the service root" in json.loads(failed.body)["error"]["message"]
    assert api.seen == []


def test_boundary_without_quotes_and_case_insensitive_parameter() -> None:
    api = FakeWebApi()
    response = send(
        api,
        batch([op("POST", "tasks", TASK)], boundary="batch_AAA123"),
        content_type="multipart/mixed;Boundary=batch_AAA123",
    )
    assert response.status == 200
    assert len(api.list("tasks")) == 1
