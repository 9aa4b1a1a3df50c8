"""The SalesOrderBulkRequest_In client and the API_SALES_ORDER_SRV reader against the S/4 emulator.

Every S/4 answer is classified the way the flow needs it: 202 taken, Client faults and refused
credentials permanent (with S/4's text), S/4 failing or throttling transient, a lost answer
transient; a repeated message id is taken again but processed once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.connectors.s4_soap import SalesOrderBulkClient, parse_fault, soap_envelope
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import EmulatorUser, S4EmulatorSettings
from d365sap.errors import PermanentError, TransientError
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import BulkHeader, bulk_request, order_xml
from d365sap.web.serving import BackgroundServer, serving
from support.sales_order_data import SO_SERVICE, SOAP_PATH, SOLD_TO, S4Admin, line, order

pytestmark = pytest.mark.anyio
ARRANGEMENT = EmulatorUser(name="SO_COMM_USER", password=SecretStr("Orders1!"))
OTHER = EmulatorUser(name="S4_COMM_USER", password=SecretStr("Welcome1!"))


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    settings = S4EmulatorSettings(users=[OTHER, ARRANGEMENT])
    settings.sales_orders.users = [ARRANGEMENT]
    with serving(create_app(settings), name="s4-soap-client") as running:
        yield running


@pytest.fixture
def s4(server: BackgroundServer) -> S4Admin:
    admin = S4Admin(server.url)
    admin.reset()
    return admin


def client(
    url: str, user: EmulatorUser = ARRANGEMENT, password: str | None = None
) -> SalesOrderBulkClient:
    secret = password if password is not None else user.password.get_secret_value()
    return SalesOrderBulkClient(url + SOAP_PATH, user=user.name, password=secret, timeout=5.0)


def bulk(*order_ids: str, message_id: str | None = None, broken: bool = False) -> tuple[str, bytes]:
    identity = uuid.uuid4()
    header = BulkHeader(
        message_id=message_id or identity.hex.upper(),
        message_uuid=str(identity),
        created_at=datetime.now(UTC),
        sender_system="D365",
    )
    nodes = []
    for order_id in order_ids:
        mapped = sales_order(
            order(line(), order_id=uuid.UUID(order_id)), SOLD_TO, SalesOrderSettings()
        )
        if broken:
            mapped = mapped.model_copy(update={"order_type": "TOOLONG"})
        nodes.append(order_xml(mapped))
    return header.message_id, bulk_request(header, nodes)


async def test_a_bulk_message_is_taken_and_its_orders_created(s4: S4Admin) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    message_id, body = bulk(first, second)
    async with client(s4.url) as soap:
        receipt = await soap.send(body, message_id=message_id)
    assert (receipt.status, receipt.message_id, receipt.raw) == (202, message_id, b"")
    s4.wait()
    [received] = s4.messages()
    assert (received["message_id"], received["state"], received["order_count"]) == (
        message_id,
        "processed",
        2,
    )
    assert received["user"] == ARRANGEMENT.name
    assert len(s4.orders(first)) == 1 and len(s4.orders(second)) == 1


async def test_the_same_message_id_is_taken_again_but_processed_once(s4: S4Admin) -> None:
    order_id = str(uuid.uuid4())
    message_id, body = bulk(order_id)
    async with client(s4.url) as soap:
        await soap.send(body, message_id=message_id)
        again = await soap.send(body, message_id=message_id)
    assert again.status == 202
    s4.wait()
    assert [m["state"] for m in s4.messages()] == ["processed", "duplicate"]
    assert len(s4.orders(order_id)) == 1


async def test_a_schema_violation_is_a_permanent_client_fault(s4: S4Admin) -> None:
    message_id, body = bulk(str(uuid.uuid4()), broken=True)
    async with client(s4.url) as soap:
        with pytest.raises(PermanentError) as caught:
            await soap.send(body, message_id=message_id)
    error = caught.value
    assert (error.status, error.code) == (500, "Client")
    assert error.backend_message is not None and "SalesOrderType" in error.backend_message
    assert "not valid against the schema" in error.message
    assert s4.messages() == []


async def test_wrong_credentials_and_a_user_outside_the_arrangement_are_permanent(
    s4: S4Admin,
) -> None:
    message_id, body = bulk(str(uuid.uuid4()))
    async with client(s4.url, password="wrong") as soap:
        with pytest.raises(PermanentError) as logon:
            await soap.send(body, message_id=message_id)
    assert logon.value.status == 401
    async with client(s4.url, OTHER) as soap:
        with pytest.raises(PermanentError) as authorization:
            await soap.send(body, message_id=message_id)
    assert authorization.value.status == 403
    assert "Authorization missing" in (authorization.value.backend_message or "")


@pytest.mark.parametrize(
    ("kind", "status"), [("error", 503), ("retry_after", None), ("drop", None)]
)
async def test_s4_failing_or_throttling_is_transient(
    s4: S4Admin, kind: str, status: int | None
) -> None:
    s4.next_fault(kind, status=status)
    message_id, body = bulk(str(uuid.uuid4()))
    async with client(s4.url) as soap:
        with pytest.raises(TransientError) as caught:
            await soap.send(body, message_id=message_id)
        if kind == "retry_after":
            assert caught.value.status == 429 and caught.value.retry_after is not None
        retried = await soap.send(body, message_id=message_id)
    assert retried.status == 202


async def test_a_lost_answer_is_transient_and_the_repetition_a_duplicate(s4: S4Admin) -> None:
    s4.next_fault("drop_after_commit")
    order_id = str(uuid.uuid4())
    message_id, body = bulk(order_id)
    async with client(s4.url) as soap:
        with pytest.raises(TransientError):
            await soap.send(body, message_id=message_id)
        await soap.send(body, message_id=message_id)
    s4.wait()
    assert [m["state"] for m in s4.messages()] == ["processed", "duplicate"]
    assert len(s4.orders(order_id)) == 1


async def test_the_reader_finds_orders_by_their_dynamics_id(s4: S4Admin) -> None:
    created, other, missing = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    message_id, body = bulk(created, other)
    async with client(s4.url) as soap:
        await soap.send(body, message_id=message_id)
    s4.wait()
    reader = SalesOrderReader(
        s4.url + SO_SERVICE, user=OTHER.name, password=OTHER.password.get_secret_value()
    )
    async with reader:
        found = await reader.find_orders([created, missing, other, created])
    assert set(found) == {created, other, missing}
    assert found[missing] == []
    [order_found] = found[created]
    assert order_found.order_id == created and order_found.sales_order.isdigit()
    assert found[other][0].sales_order != order_found.sales_order
    async with reader:
        assert await reader.find_orders([]) == {}


def test_faults_of_both_soap_versions_are_read() -> None:
    soap12 = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
      <env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code>
      <env:Reason><env:Text xml:lang="en">bad request</env:Text></env:Reason>
      <env:Detail><x><ReasonText>SalesOrder[1]/Item: missing</ReasonText></x></env:Detail>
      </env:Fault></env:Body></env:Envelope>"""
    fault = parse_fault(soap12)
    assert fault is not None
    assert (fault.code, fault.text, fault.reasons) == (
        "Sender",
        "bad request",
        ("SalesOrder[1]/Item: missing",),
    )
    assert fault.message() == "bad request | SalesOrder[1]/Item: missing"
    assert parse_fault(b"<ok/>") is None
    assert parse_fault(b"not xml") is None
    assert soap_envelope(b"<x/>").startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
