"""End-to-end helpers: a running service with its emulators, and ways to look into each system."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
from lxml import etree

from d365sap.demo import DEMO_PASSWORD, DEMO_USER, INBOUND_PATH, S4_SERVICE, DemoEnvironment

MakeStack = Callable[..., "Stack"]


class Stack:
    """A running service with its emulators, and helpers to look into each system."""

    def __init__(self, environment: DemoEnvironment) -> None:
        self.env = environment
        self.http = httpx2.Client(timeout=30.0)
        emu = environment.settings.emulators
        self.s4_auth = (emu.s4.users[0].name, emu.s4.users[0].password.get_secret_value())

    def send(
        self,
        body: bytes,
        *,
        auth: tuple[str, str] | None = (DEMO_USER, DEMO_PASSWORD),
        headers: dict[str, str] | None = None,
        path: str = INBOUND_PATH,
    ) -> httpx2.Response:
        request_headers = {"Content-Type": "application/xml", **(headers or {})}
        return self.http.post(
            f"{self.env.service_url}{path}", content=body, headers=request_headers, auth=auth
        )

    # S/4 emulator
    def s4_requests(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.env.s4_url}/emulator/requests")
        response.raise_for_status()
        body = response.json()
        return list(body["requests"] if isinstance(body, dict) else body)

    def s4_get(self, path: str, **params: str) -> httpx2.Response:
        return self.http.get(
            f"{self.env.s4_url}{S4_SERVICE}/{path}",
            params={"$format": "json", **params},
            auth=self.s4_auth,
        )

    def expire_csrf(self) -> None:
        self.http.post(f"{self.env.s4_url}/emulator/csrf/expire").raise_for_status()

    # ERP emulator
    def idocs(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.env.erp_url}/emulator/idocs")
        response.raise_for_status()
        body = response.json()
        return list(body["idocs"] if isinstance(body, dict) else body)

    def idoc(self, number: str) -> dict[str, Any]:
        response = self.http.get(f"{self.env.erp_url}/emulator/idocs/{number}")
        response.raise_for_status()
        return dict(response.json())

    def erp_customer(self, kunnr: str) -> httpx2.Response:
        return self.http.get(f"{self.env.erp_url}/emulator/customers/{kunnr}")

    # the service
    def message(self, message_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.env.service_url}/api/messages/{message_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait_final(self, message_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the message API until the message is settled."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(message_id)
            if message["status"] in ("done", "failed", "discarded", "superseded"):
                return message
            if time.monotonic() > deadline:
                raise AssertionError(f"message not settled in {timeout} s: {message}")
            time.sleep(0.05)

    def close(self) -> None:
        self.http.close()
        self.env.stop()


def idoc_document(raw_xml: str, root_name: str) -> etree._Element:
    """The IDoc document inside what the ERP emulator received (SOAP envelope or bare)."""
    root = etree.fromstring(raw_xml.encode("utf-8"))
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == root_name:
            return element
    raise AssertionError(f"no {root_name} in {raw_xml[:200]}")
