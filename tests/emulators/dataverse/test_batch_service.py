"""$batch end to end through the real Web API service: queries inside a batch (paging, query
errors), continue-on-error against stop-at-first-failure, Content-ID references in URLs."""

from __future__ import annotations

import json

from d365sap.emulators.dataverse.batch_multipart import (
    boundary_of,
    read_part,
    split_head,
    split_multipart,
)
from support.dataverse_api import ACCOUNT_US1, ROOT, WebApi, web_api

BATCH = "batch_e2e"


def part(
    method: str,
    url: str,
    body: object | None = None,
    content_id: str | None = None,
    prefer: str | None = None,
    if_match: str | None = None,
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1", "Accept: application/json"]
    if prefer:
        lines.append(f"Prefer: {prefer}")
    if if_match:
        lines.append(f"If-Match: {if_match}")
    if body is None:
        lines += ["", ""]
    else:
        lines += ["Content-Type: application/json", "", json.dumps(body)]
    return "\r\n".join(lines)


def changeset(*parts: str) -> str:
    inner = "".join(f"--cs\r\n{p}\r\n" for p in parts) + "--cs--"
    return f"Content-Type: multipart/mixed; boundary=cs\r\n\r\n{inner}"


Answers = list[tuple[int, bytes]]


def send(
    api: WebApi, *parts: str, prefer: str | None = None
) -> tuple[int, list[tuple[int, bytes]]]:
    body = "".join(f"--{BATCH}\r\n{p}\r\n" for p in parts) + f"--{BATCH}--\r\n"
    headers = {"Content-Type": f"multipart/mixed; boundary={BATCH}"}
    if prefer:
        headers["Prefer"] = prefer
    response = api.request("POST", "$batch", content=body.encode("utf-8"), headers=headers)
    answers: Answers = []
    for raw in split_multipart(response.content, boundary_of(response.headers["content-type"])):
        outer = read_part(raw)
        inner_parts = (
            [
                read_part(r)
                for r in split_multipart(outer.content, boundary_of(outer.headers["content-type"]))
            ]
            if outer.headers["content-type"].startswith("multipart/mixed")
            else [outer]
        )
        for inner in inner_parts:
            lines, payload = split_head(inner.content)
            answers.append((int(lines[0].split()[1]), payload))
    return response.status_code, answers


def names(api: WebApi, prefix: str) -> list[str]:
    found = api.get(f"accounts?$select=name&$filter=startswith(name,'{prefix}')&$orderby=name")
    return [row["name"] for row in found.json()["value"]]


def test_collection_read_in_a_batch_pages_with_a_next_link_usable_outside_it() -> None:
    api = web_api()
    status, answers = send(
        api,
        part(
            "GET",
            f"{ROOT}accounts?$select=name&$orderby=name&$count=true",
            prefer="odata.maxpagesize=1",
        ),
    )
    assert status == 200
    ((code, payload),) = answers
    assert code == 200
    first = json.loads(payload)
    assert len(first["value"]) == 1
    assert first["@odata.count"] > 1
    following = api.get(
        first["@odata.nextLink"].removeprefix(ROOT), headers={"Prefer": "odata.maxpagesize=1"}
    )
    assert following.status_code == 200, following.text
    assert following.json()["value"][0]["name"] >= first["value"][0]["name"]
    assert following.json()["value"][0]["accountid"] != first["value"][0]["accountid"]


def test_query_errors_inside_a_batch_with_and_without_continue_on_error() -> None:
    api = web_api()
    bad = part("GET", f"{ROOT}accounts?$skip=1")
    create = part("POST", f"{ROOT}accounts", {"name": "zz batch continue"})
    status, answers = send(api, bad, create)
    assert status == 400
    assert [code for code, _ in answers] == [400]
    assert json.loads(answers[0][1])["error"] == {
        "code": "0x80060888",
        "message": "The query parameter $skip is not supported",
    }
    assert names(api, "zz batch") == []
    status, answers = send(api, bad, create, prefer="odata.continue-on-error")
    assert status == 200
    assert [code for code, _ in answers] == [400, 204]
    assert names(api, "zz batch") == ["zz batch continue"]


def test_references_in_urls_update_the_record_created_earlier_in_the_change_set() -> None:
    api = web_api()
    status, answers = send(
        api,
        changeset(
            part("POST", f"{ROOT}accounts", {"name": "zz ref created"}, "1"),
            part("PATCH", "$1", {"name": "zz ref patched"}, "2"),
            part("PUT", "$1/accountnumber", {"value": "ZZ-1"}, "3"),
        ),
    )
    assert status == 200, answers
    assert [code for code, _ in answers] == [204, 204, 204]
    found = api.get("accounts?$select=name,accountnumber&$filter=accountnumber eq 'ZZ-1'")
    assert [row["name"] for row in found.json()["value"]] == ["zz ref patched"]


def test_a_failed_change_set_leaves_seed_rows_and_stops_the_batch() -> None:
    api = web_api()
    status, answers = send(
        api,
        changeset(
            part("PATCH", f"{ROOT}accounts({ACCOUNT_US1})", {"name": "zz must not stay"}, "1"),
            part(
                "PATCH",
                f"{ROOT}accounts(00000000-0000-0000-0000-00000000dead)",
                {"name": "x"},
                "2",
                if_match="*",  # no upsert: the missing row is a 404
            ),
        ),
        part("POST", f"{ROOT}accounts", {"name": "zz after failure"}),
    )
    assert status == 404
    assert [code for code, _ in answers] == [404]
    assert names(api, "zz") == []
    assert api.get(f"accounts({ACCOUNT_US1})/name").json()["value"] != "zz must not stay"
