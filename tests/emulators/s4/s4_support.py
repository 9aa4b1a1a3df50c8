"""Helpers for the S/4 emulator tests: a client that behaves like an S/4 OData consumer."""

from __future__ import annotations

from typing import Any

import httpx2

ROOT = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
USER = ("S4_COMM_USER", "Welcome1!")
SA_KEY = "Customer='{c}',SalesOrganization='{o}',DistributionChannel='{d}',Division='{v}'"


def sales_area_path(customer: str, org: str = "1710", channel: str = "10", div: str = "00") -> str:
    """Keyed path of a customer sales area."""
    return "A_CustomerSalesArea(" + SA_KEY.format(c=customer, o=org, d=channel, v=div) + ")"


class S4:
    """A session with the emulator: basic auth, cookies, CSRF token fetched on demand."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None = USER) -> None:
        self.base = base_url
        self.root = base_url + ROOT
        self.http = httpx2.Client(auth=auth, timeout=10.0, headers={"Accept": "application/json"})
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: str) -> httpx2.Response:
        return self.http.get(self.root + path, params=params or None)

    def fetch_token(self) -> str:
        response = self.http.get(self.root, headers={"X-CSRF-Token": "Fetch"})
        assert response.status_code == 200, response.text
        self.token = response.headers["x-csrf-token"]
        return self.token

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx2.Response:
        token = self.token or self.fetch_token()
        all_headers = {"X-CSRF-Token": token, **(headers or {})}
        if content is None and body is not None:
            return self.http.request(method, self.root + path, json=body, headers=all_headers)
        return self.http.request(method, self.root + path, content=content, headers=all_headers)

    def admin(self, method: str, path: str) -> httpx2.Response:
        return httpx2.request(method, self.base + "/emulator/" + path, timeout=10.0)

    def reset(self) -> None:
        assert self.admin("POST", "reset").status_code == 200


def sap_error(
    response: httpx2.Response,
    status: int,
    *,
    code: str | None = None,
    prop: str | None = None,
    contains: str | None = None,
) -> dict[str, Any]:
    """Assert ``response`` is SAP's OData v2 error with ``status``; returns ``error``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innererror"}
    assert error["message"]["lang"] == "en"
    inner = error["innererror"]
    assert inner["application"]["service_id"] == "API_BUSINESS_PARTNER"
    assert len(inner["transactionid"]) == 32
    assert inner["timestamp"][:8].isdigit()
    assert "SAP_Note" in inner["Error_Resolution"]
    assert inner["errordetails"], "SAP always lists at least one detail"
    for detail in inner["errordetails"]:
        assert {"code", "message", "propertyref", "severity", "target"} <= set(detail)
        assert detail["severity"] == "error"
    if code is not None:
        assert error["code"] == code
    if prop is not None:
        assert any(prop in d["propertyref"].split(",") for d in inner["errordetails"]), inner
    if contains is not None:
        assert contains in error["message"]["value"], error["message"]["value"]
    return error
