"""Fault injection in the ERP emulator, over loopback HTTP: SOAP faults, drops, lost answers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from lxml import etree

from d365sap.emulators.erp.app import create_app
from d365sap.emulators.faults import FaultSettings
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.web.serving import serving
from emulators.erp.erp_support import (
    ACCOUNTS,
    AUTH,
    RFC_STYLE_NS,
    SOAP_NS,
    Fault,
    golden_bytes,
    numbers,
    post_plain,
    post_soap,
    soap_fault,
)

SAP_IDOC = {"Content-Type": "application/x-sap.idoc"}
DROPPED = (httpx2.RemoteProtocolError, httpx2.ReadError)


@pytest.fixture(autouse=True)
def no_faults_left(erp: httpx2.Client) -> Iterator[None]:
    """This module's server starts every test, and ends it, without faults."""
    erp.delete("/emulator/faults").raise_for_status()
    yield
    erp.delete("/emulator/faults").raise_for_status()


def put_faults(erp: httpx2.Client, **settings: Any) -> dict[str, Any]:
    response = erp.put("/emulator/faults", json=settings)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def next_faults(erp: httpx2.Client, kind: str, count: int = 1, **extra: Any) -> None:
    response = erp.post("/emulator/faults/next", json={"kind": kind, "count": count, **extra})
    assert response.status_code == 200, response.text


def server_fault(response: httpx2.Response, status: int) -> Fault:
    """A SOAP fault with ``status``, faultcode Server and the WSDL's NoIdocsSaved exception."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None, response.text
    detail = fault.find(f"detail/{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttp.Exception")
    assert detail is not None, response.text
    found = Fault(
        code=fault.findtext("faultcode") or "",
        string=fault.findtext("faultstring") or "",
        name=detail.findtext("Name") or "",
        text=detail.findtext("Text") or "",
    )
    assert found.code == "soap-env:Server"
    assert found.name == "NoIdocsSaved"
    return found


def idocs(erp: httpx2.Client) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = erp.get("/emulator/idocs").json()["idocs"]
    return result


def test_error_rate_is_a_server_soap_fault_and_saves_nothing(erp: httpx2.Client) -> None:
    put_faults(erp, error_rate={503: 1.0})
    fault = server_fault(post_soap(erp, golden_bytes(ACCOUNTS)), 503)
    assert "busy" in fault.string
    put_faults(erp, error_rate={500: 1.0})
    assert soap_fault(post_soap(erp, golden_bytes(ACCOUNTS))).code == "soap-env:Server"
    assert idocs(erp) == []
    state = erp.get("/emulator/faults").json()
    assert state["error_statuses"] == {"500": 1, "503": 1}


def test_plain_endpoint_gets_the_bare_exception(erp: httpx2.Client) -> None:
    next_faults(erp, "error", status=500)
    response = post_plain(erp, golden_bytes(ACCOUNTS))
    assert response.status_code == 500
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttp.Exception"
    assert root.findtext("Name") == "NoIdocsSaved"


def test_lock_names_the_customer_and_the_user(erp: httpx2.Client) -> None:
    next_faults(erp, "lock")
    fault = server_fault(post_soap(erp, golden_bytes(ACCOUNTS)), 500)
    assert fault.string == "Customer 100123 is currently being processed by user BATCH_USER"
    assert idocs(erp) == []
    assert numbers(post_soap(erp, golden_bytes(ACCOUNTS))), "the lock was released"
    assert erp.get("/emulator/faults").json()["counters"]["lock"] == 1


def test_retry_after_is_503_with_the_header(erp: httpx2.Client) -> None:
    put_faults(erp, retry_after_rate=1.0, retry_after_seconds=12)
    response = post_soap(erp, golden_bytes(ACCOUNTS))
    assert "12 seconds" in server_fault(response, 503).string
    assert response.headers["retry-after"] == "12"


def test_latency_is_added(erp: httpx2.Client) -> None:
    put_faults(erp, latency_ms=300)
    started = time.monotonic()
    assert numbers(post_soap(erp, golden_bytes(ACCOUNTS)))
    assert 0.3 <= time.monotonic() - started < 2.0


def test_timeout_holds_the_request_past_the_client_timeout(erp: httpx2.Client) -> None:
    put_faults(erp, timeout_rate=1.0, timeout_seconds=5)
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        erp.post(
            "/sap/bc/srt/idoc?sap-client=001",
            content=golden_bytes(ACCOUNTS),
            headers={"Content-Type": "text/xml"},
            timeout=0.3,
        )
    assert time.monotonic() - started < 2.0
    assert idocs(erp) == []


def test_timeout_then_504(erp: httpx2.Client) -> None:
    put_faults(erp, timeout_rate=1.0, timeout_seconds=0.3)
    started = time.monotonic()
    response = post_soap(erp, golden_bytes(ACCOUNTS))
    assert time.monotonic() - started >= 0.3
    server_fault(response, 504)


def test_drop_is_a_transport_error_and_saves_nothing(erp: httpx2.Client) -> None:
    next_faults(erp, "drop")
    with pytest.raises(DROPPED):
        post_soap(erp, golden_bytes(ACCOUNTS))
    assert idocs(erp) == []
    assert numbers(post_soap(erp, golden_bytes(ACCOUNTS)))


def test_drop_after_commit_posts_the_idoc_and_loses_the_answer(erp: httpx2.Client) -> None:
    message_id = uuid.uuid4().hex.upper()
    headers = {**SAP_IDOC, "SapMessageId": message_id}
    next_faults(erp, "drop_after_commit")
    with pytest.raises(DROPPED):
        post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)
    posted = idocs(erp)
    assert len(posted) == 1
    assert posted[0]["status"] == "53"
    assert posted[0]["message_id"] == message_id
    repeat = post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)
    assert numbers(repeat) == [posted[0]["docnum"]], "the sender's retry is recognised"
    assert len(idocs(erp)) == 1
    assert erp.get("/emulator/faults").json()["counters"]["drop_after_commit"] == 1


def test_seeded_rate_over_200_requests(erp: httpx2.Client) -> None:
    put_faults(erp, error_rate={503: 0.2}, seed=23)
    statuses = [post_soap(erp, b"<empty/>").status_code for _ in range(200)]
    assert 25 <= statuses.count(503) <= 55
    assert statuses.count(503) + statuses.count(500) == 200, "the rest: the schema's own fault"
    assert erp.get("/emulator/faults").json()["counters"]["error"] == statuses.count(503)


def test_admin_routes_and_other_paths(erp: httpx2.Client) -> None:
    put_faults(erp, drop_rate=1.0, paths=["/"])
    for path in ("/emulator/health", "/emulator/idocs", "/emulator/customers", "/emulator/faults"):
        assert erp.get(path).status_code == 200
    put_faults(erp, drop_rate=1.0, paths=["/sap/bc/idoc_xml"])
    assert numbers(post_soap(erp, golden_bytes(ACCOUNTS)))
    with pytest.raises(DROPPED):
        post_plain(erp, golden_bytes(ACCOUNTS))


def test_s4_only_kinds_are_refused(erp: httpx2.Client) -> None:
    response = erp.put("/emulator/faults", json={"csrf_expiry_rate": 0.5})
    assert response.status_code == 422
    assert ["body", "csrf_expiry_rate"] in [e["loc"] for e in response.json()["detail"]]
    response = erp.post("/emulator/faults/next", json={"kind": "etag_change"})
    assert response.status_code == 422
    assert "lock" in erp.get("/emulator/faults").json()["supported"]


def test_faults_from_settings_apply_from_the_start() -> None:
    settings = ErpEmulatorSettings(faults=FaultSettings(lock_rate=1.0))
    with (
        serving(create_app(settings), name="erp-config-faults") as server,
        httpx2.Client(base_url=server.url, auth=AUTH, timeout=5.0) as client,
    ):
        fault = server_fault(post_soap(client, golden_bytes(ACCOUNTS)), 500)
        assert "currently being processed" in fault.string
