"""$batch: retrieve parts, atomic change sets, SAP's multipart reply, CSRF on the batch."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2

from d365sap.emulators.s4.batch import parse_headers, split_head, split_multipart
from emulators.s4.s4_support import S4, sales_area_path


def http_part(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> str:
    lines = [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        *[f"{k}: {v}" for k, v in (headers or {}).items() if k == "Content-ID"],
        "",
        f"{method} {url} HTTP/1.1",
        "Accept: application/json",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k != "Content-ID"]
    if body is not None:
        payload = json.dumps(body)
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}", "", payload]
    else:
        lines += ["", ""]
    return "\r\n".join(lines)


def change_set(boundary: str, parts: list[str]) -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


def batch_body(parts: list[str]) -> bytes:
    return ("".join(f"--batch_1\r\n{p}\r\n" for p in parts) + "--batch_1--\r\n").encode()


def post_batch(s4: S4, parts: list[str], *, token: bool = True) -> httpx2.Response:
    headers = {"Content-Type": "multipart/mixed; boundary=batch_1"}
    if token:
        headers["X-CSRF-Token"] = s4.token or s4.fetch_token()
    return s4.http.post(s4.root + "$batch", content=batch_body(parts), headers=headers)


def reply_parts(response: httpx2.Response) -> list[tuple[dict[str, str], bytes]]:
    assert response.status_code == 202, response.text
    boundary = re.search(r"boundary=([^;]+)", response.headers["content-type"])
    assert boundary is not None
    parts = []
    for part in split_multipart(response.content, boundary.group(1)):
        lines, payload = split_head(part)
        parts.append((parse_headers(lines), payload))
    return parts


def http_status(payload: bytes) -> tuple[int, bytes]:
    lines, body = split_head(payload)
    return int(lines[0].split()[1]), body


NEW_AREA = {
    "Customer": "17100001",
    "SalesOrganization": "1710",
    "DistributionChannel": "10",
    "Division": "00",
    "to_SalesAreaTax": [{"DepartureCountry": "US", "CustomerTaxCategory": "UTXJ"}],
}


def test_retrievals_and_a_good_change_set(s4: S4) -> None:
    parts = [
        http_part("GET", "A_BusinessPartner('17100002')?$select=BusinessPartner"),
        change_set(
            "changeset_a",
            [
                http_part("POST", "A_CustomerSalesArea", NEW_AREA, {"Content-ID": "1"}),
                http_part("PATCH", sales_area_path("17100002"), {"SalesGroup": "171"}),
                http_part(
                    "POST",
                    sales_area_path("17100003"),
                    {"SalesGroup": "176"},
                    {"X-HTTP-Method": "MERGE"},
                ),
            ],
        ),
        http_part("GET", "/sap/opu/odata/sap/API_BUSINESS_PARTNER/" + sales_area_path("17100001")),
    ]
    reply = reply_parts(post_batch(s4, parts))
    assert len(reply) == 3
    headers, payload = reply[0]
    assert headers["content-type"] == "application/http"
    status, body = http_status(payload)
    assert status == 200 and json.loads(body)["d"]["BusinessPartner"] == "17100002"
    changes_headers, changes = reply[1]
    assert changes_headers["content-type"].startswith("multipart/mixed")
    boundary = changes_headers["content-type"].split("boundary=")[1]
    inner = [split_head(p) for p in split_multipart(changes, boundary)]
    statuses = [http_status(payload)[0] for _, payload in inner]
    assert statuses == [201, 204, 204]
    assert parse_headers(inner[0][0])["content-id"] == "1"
    assert http_status(reply[2][1])[0] == 200
    assert s4.get(sales_area_path("17100002")).json()["d"]["SalesGroup"] == "171"
    assert s4.get(sales_area_path("17100003")).json()["d"]["SalesGroup"] == "176"
    journal = s4.admin("GET", "requests").json()["requests"]
    inner_ops = [(r["method"], r["path"], r["status"]) for r in journal if r["in_batch"]]
    assert inner_ops[0] == ("POST", "A_CustomerSalesArea", 201)
    assert [r["method"] for r in journal if not r["in_batch"]] == ["POST"]


def test_failing_operation_rolls_the_whole_change_set_back(s4: S4) -> None:
    parts = [
        change_set(
            "changeset_b",
            [
                http_part("POST", "A_CustomerSalesArea", NEW_AREA),
                http_part("PATCH", sales_area_path("17100002"), {"SalesGroup": "171"}),
                http_part("POST", "A_CustomerSalesArea", dict(NEW_AREA, Customer="17199999")),
            ],
        ),
        change_set(
            "changeset_c", [http_part("PATCH", sales_area_path("17100003"), {"SalesGroup": "175"})]
        ),
    ]
    reply = reply_parts(post_batch(s4, parts))
    assert len(reply) == 2
    headers, payload = reply[0]
    assert headers["content-type"] == "application/http"
    status, body = http_status(payload)
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == "F2/502" and "17199999" in error["message"]["value"]
    assert "Batch_SAP_Note" in error["innererror"]["Error_Resolution"]
    assert s4.get(sales_area_path("17100001")).status_code == 404
    assert s4.get(sales_area_path("17100002")).json()["d"]["SalesGroup"] == "170"
    second_headers, _ = reply[1]
    assert second_headers["content-type"].startswith("multipart/mixed")
    assert s4.get(sales_area_path("17100003")).json()["d"]["SalesGroup"] == "175"


def test_content_id_reference_inside_a_change_set(s4: S4) -> None:
    body = {"BusinessPartnerCategory": "2", "OrganizationBPName1": "Batch Kunde", "to_Customer": {}}
    parts = [
        change_set(
            "changeset_d",
            [
                http_part("POST", "A_BusinessPartner", body, {"Content-ID": "bp"}),
                http_part("POST", "$bp/to_BusinessPartnerAddress", {"AddressID": "77"}),
            ],
        )
    ]
    reply = reply_parts(post_batch(s4, parts))
    boundary = reply[0][0]["content-type"].split("boundary=")[1]
    statuses = [http_status(split_head(p)[1])[0] for p in split_multipart(reply[0][1], boundary)]
    assert statuses == [201, 201]
    address = s4.get("A_BusinessPartnerAddress(BusinessPartner='1000000',AddressID='77')")
    assert address.status_code == 200


def test_operations_in_the_wrong_place(s4: S4) -> None:
    parts = [
        http_part("PATCH", sales_area_path("17100002"), {"SalesGroup": "171"}),
        change_set("changeset_e", [http_part("GET", "A_Customer")]),
        http_part("GET", "A_Nonsense"),
    ]
    reply = reply_parts(post_batch(s4, parts))
    assert [http_status(payload)[0] for _, payload in reply] == [400, 400, 404]
    assert s4.get(sales_area_path("17100002")).json()["d"]["SalesGroup"] == "170"


def test_batch_needs_a_csrf_token(s4: S4) -> None:
    s4.fetch_token()
    response = post_batch(s4, [http_part("GET", "A_Customer")], token=False)
    assert response.status_code == 403
    assert response.headers["x-csrf-token"] == "Required"


def test_malformed_batch_is_400(s4: S4) -> None:
    token = s4.fetch_token()
    response = s4.http.post(
        s4.root + "$batch",
        content=b"no multipart here",
        headers={"Content-Type": "application/json", "X-CSRF-Token": token},
    )
    assert response.status_code == 400
    assert "multipart/mixed" in response.json()["error"]["message"]["value"]
    response = s4.http.post(
        s4.root + "$batch",
        content=b"--other\r\n\r\n",
        headers={"Content-Type": "multipart/mixed; boundary=batch_1", "X-CSRF-Token": token},
    )
    assert response.status_code == 400
