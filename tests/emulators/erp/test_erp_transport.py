"""HTTP contract: logon client, basic auth, content types, size limit, exactly-once message ids."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx2
import pytest
from pydantic import SecretStr

from d365sap.emulators.erp.app import create_app
from d365sap.emulators.settings import EmulatorUser, ErpEmulatorSettings
from d365sap.web.serving import serving
from emulators.erp.erp_support import (
    ACCOUNTS,
    AUTH,
    DETAILS,
    PLAIN_PATH,
    SOAP_PATH,
    TEXT_XML,
    envelope,
    golden,
    golden_bytes,
    numbers,
    post_plain,
    post_soap,
    soap_fault,
    xml,
)

REALM = 'Basic realm="SAP NetWeaver Application Server [ERP/001]"'
SAP_IDOC = "application/x-sap.idoc"


def _idoc_count(client: httpx2.Client) -> int:
    return len(client.get("/emulator/idocs").json()["idocs"])


@pytest.mark.parametrize(
    "auth", [None, ("IDOC_USER", "wrong"), ("SOMEONE", "Welcome1!"), ("IDOC_USER", "welcome1!")]
)
@pytest.mark.parametrize("path", [SOAP_PATH, PLAIN_PATH])
def test_logon_failed(erp: httpx2.Client, auth: tuple[str, str] | None, path: str) -> None:
    with httpx2.Client(base_url=str(erp.base_url), auth=auth) as anonymous:
        response = anonymous.post(path, content=envelope(golden_bytes(ACCOUNTS)), headers=TEXT_XML)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert _idoc_count(erp) == 0


def test_user_names_are_case_insensitive(erp: httpx2.Client) -> None:
    with httpx2.Client(base_url=str(erp.base_url), auth=("idoc_user", AUTH[1])) as lower:
        assert numbers(post_soap(lower, golden_bytes(ACCOUNTS))) == ["0000000000000001"]


def test_garbled_authorization_header(erp: httpx2.Client) -> None:
    with httpx2.Client(base_url=str(erp.base_url)) as anonymous:
        for value in ("Basic !!!", "Bearer abc", "Basic " + "SURPQ19VU0VS"):
            response = anonymous.post(
                SOAP_PATH, content=b"<x/>", headers={**TEXT_XML, "Authorization": value}
            )
            assert response.status_code == 401


@pytest.mark.parametrize(
    "content_type", ["application/xml", "application/soap+xml", "text/plain", "application/json"]
)
def test_unsupported_content_type(erp: httpx2.Client, content_type: str) -> None:
    response = erp.post(
        SOAP_PATH, content=envelope(golden_bytes(ACCOUNTS)), headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert _idoc_count(erp) == 0


def test_missing_content_type(erp: httpx2.Client) -> None:
    response = erp.post(PLAIN_PATH, content=golden_bytes(ACCOUNTS))
    assert response.status_code == 415


def test_wrong_client_on_the_soap_endpoint(erp: httpx2.Client) -> None:
    response = erp.post(
        "/sap/bc/srt/idoc?sap-client=002",
        content=envelope(golden_bytes(ACCOUNTS)),
        headers=TEXT_XML,
    )
    fault = soap_fault(response)
    assert fault.code == "soap-env:Client"
    assert fault.name == "NoAuthority"
    assert fault.string == "Logon failed: client 002 is not available in this system"
    assert _idoc_count(erp) == 0


def test_wrong_client_on_the_plain_endpoint(erp: httpx2.Client) -> None:
    response = erp.post(
        "/sap/bc/idoc_xml?sap-client=800", content=golden_bytes(ACCOUNTS), headers=TEXT_XML
    )
    assert response.status_code == 401
    assert "client 800 is not available" in response.text
    assert _idoc_count(erp) == 0


def test_client_from_header(erp: httpx2.Client) -> None:
    response = erp.post(
        "/sap/bc/idoc_xml",
        content=golden_bytes(ACCOUNTS),
        headers={**TEXT_XML, "sap-client": "002"},
    )
    assert response.status_code == 401


def test_exactly_once_with_sap_message_id(erp: httpx2.Client) -> None:
    headers = {"Content-Type": SAP_IDOC, "SapMessageId": "0A1B2C3D4E5F60718293A4B5C6D7E8F9"}
    first = post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)
    second = post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)

    assert numbers(first) == numbers(second) == ["0000000000000001"]
    assert (
        first.headers["SapMessageId"] == second.headers["SapMessageId"] == headers["SapMessageId"]
    )
    assert second.headers["SapIDocDbId"] == "0000000000000001"
    idocs = erp.get("/emulator/idocs").json()["idocs"]
    assert len(idocs) == 1
    assert idocs[0]["message_id"] == headers["SapMessageId"]
    assert erp.get("/emulator/customers/100123").json()["changed_by_idocs"] == ["0000000000000001"]
    other = post_soap(
        erp, golden_bytes(ACCOUNTS), headers={**headers, "SapMessageId": uuid.uuid4().hex}
    )
    assert numbers(other) == ["0000000000000002"]


def test_guid_and_hex_forms_are_the_same_message(erp: httpx2.Client) -> None:
    message = uuid.uuid4()
    first = post_plain(
        erp,
        golden_bytes(ACCOUNTS),
        headers={"Content-Type": SAP_IDOC, "SapMessageId": str(message)},
    )
    second = post_plain(
        erp,
        golden_bytes(ACCOUNTS),
        headers={"Content-Type": SAP_IDOC, "SapMessageId": message.hex.upper()},
    )
    assert numbers(first) == numbers(second)
    assert first.headers["SapMessageId"] == message.hex.upper()
    assert _idoc_count(erp) == 1


def test_concurrent_duplicates_post_once(erp: httpx2.Client) -> None:
    headers = {"Content-Type": SAP_IDOC, "SapMessageId": uuid.uuid4().hex}
    results: list[list[str]] = []

    def send() -> None:
        with httpx2.Client(base_url=str(erp.base_url), auth=AUTH) as client:
            results.append(numbers(post_soap(client, golden_bytes(ACCOUNTS), headers=headers)))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["0000000000000001"]] * 6
    assert _idoc_count(erp) == 1


def test_exactly_once_without_message_id_gets_one(erp: httpx2.Client) -> None:
    response = post_soap(erp, golden_bytes(ACCOUNTS), headers={"Content-Type": SAP_IDOC})
    assert len(response.headers["SapMessageId"]) == 32
    assert numbers(response) == ["0000000000000001"]


@pytest.mark.parametrize("message_id", ["CRM-MSG-0001", "0A1B2C3D", "G" * 32])
def test_malformed_message_id(erp: httpx2.Client, message_id: str) -> None:
    headers = {"Content-Type": SAP_IDOC, "SapMessageId": message_id}
    fault = soap_fault(post_soap(erp, golden_bytes(ACCOUNTS), headers=headers))
    assert fault.string.startswith(f"SapMessageId: '{message_id}' is not a message id")
    assert _idoc_count(erp) == 0


def test_text_xml_posts_duplicates_twice(erp: httpx2.Client) -> None:
    headers = {"SapMessageId": "0A1B2C3D4E5F60718293A4B5C6D7E8F9"}
    first = post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)
    second = post_soap(erp, golden_bytes(ACCOUNTS), headers=headers)
    assert numbers(first) == ["0000000000000001"]
    assert numbers(second) == ["0000000000000002"]
    customer = erp.get("/emulator/customers/100123").json()
    assert customer["changed_by_idocs"] == ["0000000000000001", "0000000000000002"]


@pytest.fixture(scope="module")
def small_erp() -> Iterator[httpx2.Client]:
    """An emulator with a 4 KiB body limit, its own user and client 800."""
    settings = ErpEmulatorSettings(
        users=[EmulatorUser(name="CPI_IDOC", password=SecretStr("s3cret!"))],
        sap_client="800",
        max_body_bytes=4096,
    )
    with (
        serving(create_app(settings), name="erp-small") as server,
        httpx2.Client(base_url=server.url, auth=("CPI_IDOC", "s3cret!")) as client,
    ):
        yield client


def _two_idocs() -> bytes:
    document = golden(ACCOUNTS)
    second = golden(DETAILS).find("IDOC")
    assert second is not None
    document.append(second)
    return envelope(xml(document))


def test_body_size_limit(small_erp: httpx2.Client) -> None:
    small = envelope(golden_bytes(ACCOUNTS))
    big = _two_idocs()
    assert len(small) < 4096 < len(big)
    path = "/sap/bc/srt/idoc?sap-client=800"
    assert small_erp.post(path, content=small, headers=TEXT_XML).status_code == 200
    response = small_erp.post(path, content=big, headers=TEXT_XML)
    assert response.status_code == 413
    assert len(small_erp.get("/emulator/idocs").json()["idocs"]) == 1


def test_body_size_limit_without_content_length(small_erp: httpx2.Client) -> None:
    def chunks() -> Iterator[bytes]:
        data = _two_idocs()
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    response = small_erp.post("/sap/bc/srt/idoc?sap-client=800", content=chunks(), headers=TEXT_XML)
    assert response.status_code == 413


def test_configured_client_and_realm(small_erp: httpx2.Client) -> None:
    with httpx2.Client(base_url=str(small_erp.base_url)) as anonymous:
        response = anonymous.post("/sap/bc/idoc_xml?sap-client=800", content=b"<x/>")
    assert response.headers["WWW-Authenticate"] == (
        'Basic realm="SAP NetWeaver Application Server [ERP/800]"'
    )
    wrong = small_erp.post("/sap/bc/idoc_xml?sap-client=001", content=b"<x/>", headers=TEXT_XML)
    assert wrong.status_code == 401
