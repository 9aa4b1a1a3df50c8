"""``POST $batch`` through the whole app: parts reach the real service, change sets are atomic."""

from __future__ import annotations

import json

from support.dataverse_api import ACCOUNT_US1, ROOT, WebApi, web_api

BATCH = "batch_AAA123"
CHANGESET = "changeset_BBB456"


def _request(
    method: str, url: str, body: object | None = None, content_id: str | None = None
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is None:
        lines += ["Accept: application/json", "", ""]
    else:
        lines += ["Content-Type: application/json; type=entry", "", json.dumps(body)]
    return "\r\n".join(lines)


def _batch(*items: str) -> bytes:
    text = "".join(f"--{BATCH}\r\n{item}\r\n" for item in items) + f"--{BATCH}--\r\n"
    return text.encode("utf-8")


def _changeset(*requests: str) -> str:
    inner = "".join(f"--{CHANGESET}\r\n{r}\r\n" for r in requests) + f"--{CHANGESET}--"
    return f"Content-Type: multipart/mixed; boundary={CHANGESET}\r\n\r\n{inner}"


def _send(api: WebApi, body: bytes) -> tuple[int, str]:
    response = api.request(
        "POST",
        "$batch",
        content=body,
        headers={"Content-Type": f"multipart/mixed; boundary={BATCH}"},
    )
    return response.status_code, response.text


def test_change_set_with_content_id_reference_creates_linked_rows() -> None:
    api = web_api()
    body = _batch(
        _changeset(
            _request("POST", f"{ROOT}accounts", {"name": "Batch Account"}, "1"),
            _request(
                "POST",
                f"{ROOT}contacts",
                {"lastname": "Batch", "parentcustomerid_account@odata.bind": "$1"},
                "2",
            ),
        ),
        _request("GET", f"{ROOT}accounts?$select=name&$filter=name%20eq%20'Batch%20Account'"),
    )
    status, text = _send(api, body)
    assert status == 200, text
    assert "HTTP/1.1 204" in text
    assert "Batch Account" in text
    contacts = api.get(
        "contacts?$select=lastname,_parentcustomerid_value&$filter=lastname eq 'Batch'"
    )
    rows = contacts.json()["value"]
    assert len(rows) == 1
    account = api.get("accounts?$select=name&$filter=name eq 'Batch Account'").json()["value"][0]
    assert rows[0]["_parentcustomerid_value"] == account["accountid"]


def test_a_failing_change_set_undoes_its_earlier_requests() -> None:
    api = web_api()
    body = _batch(
        _changeset(
            _request("PATCH", f"{ROOT}accounts({ACCOUNT_US1})", {"name": "Changed in batch"}, "1"),
            _request("POST", f"{ROOT}accounts", {"name": "x", "nosuchcolumn": 1}, "2"),
        )
    )
    status, text = _send(api, body)
    assert status == 400
    assert "nosuchcolumn" in text
    assert api.get(f"accounts({ACCOUNT_US1})/name").json()["value"] == "Inlandskunde US 1"
