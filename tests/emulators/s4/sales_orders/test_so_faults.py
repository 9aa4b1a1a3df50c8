"""Injected faults on the SOAP endpoint and the sales order service, and what survives them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from emulators.s4.sales_orders.so_support import OrderSpec, SalesOrderClient, bulk


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[BackgroundServer]:
    """A server of its own, so no other test meets an injected fault."""
    with serving(create_app(S4EmulatorSettings()), name="s4-so-faults") as server:
        yield server


@pytest.fixture
def so(faulty_server: BackgroundServer) -> Iterator[SalesOrderClient]:
    client = SalesOrderClient(faulty_server.url)
    client.reset()
    client.admin("DELETE", "faults")
    yield client
    client.admin("DELETE", "faults")
    client.close()


def _put(so: SalesOrderClient, **settings: Any) -> None:
    response = httpx2.put(so.base + "/emulator/faults", json=settings, timeout=5.0)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_an_injected_error_is_a_soap_fault_and_nothing_is_received(
    so: SalesOrderClient, version: str
) -> None:
    _put(so, error_rate={503: 1.0})
    response = so.post(bulk(version=version), version)
    assert response.status_code == 503
    root = response.content.decode()
    assert ("soap-env:Server" if version == "1.1" else "env:Receiver") in root
    assert "unavailable" in root
    _put(so)
    assert so.messages() == []
    assert so.admin("GET", "faults").json()["counters"]["error"] == 1


def test_throttling_carries_retry_after(so: SalesOrderClient) -> None:
    _put(so, retry_after_rate=1.0, retry_after_seconds=7)
    response = so.post(bulk())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "Too many requests" in response.text


def test_a_lost_acknowledgement_and_the_resend_create_one_order(so: SalesOrderClient) -> None:
    _put(so, drop_after_commit_rate=1.0)
    body = bulk(OrderSpec(purchase_order="ONCE"), message_id="MSG-LOST")
    with pytest.raises(httpx2.TransportError):
        so.post(body)
    _put(so)
    assert so.post(body).status_code == 202, "the sender repeats the message"
    so.wait()
    states = [m["state"] for m in so.messages()]
    assert states == ["processed", "duplicate"]
    assert [o["PurchaseOrderByCustomer"] for o in so.orders()] == ["ONCE"]


def test_a_dropped_request_is_not_received(so: SalesOrderClient) -> None:
    _put(so, drop_rate=1.0)
    with pytest.raises(httpx2.TransportError):
        so.post(bulk())
    _put(so)
    assert so.messages() == []


def test_faults_on_the_sales_order_service_name_it(so: SalesOrderClient) -> None:
    _put(so, error_rate={500: 1.0}, paths=["/sap/opu/odata/sap/API_SALES_ORDER_SRV/*"])
    response = so.odata("A_SalesOrder")
    assert response.status_code == 500
    application = response.json()["error"]["innererror"]["application"]
    assert application["service_id"] == "API_SALES_ORDER_SRV"
    assert so.post(bulk()).status_code == 202, "out of the configured paths"
