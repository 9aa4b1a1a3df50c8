"""Packing orders into bulk messages through the outbox, against the S/4 emulator on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.connectors.s4_soap import SalesOrderBulkClient
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.engine.outbox import PENDING, REFUSED, SENDING, SENT, Outbox
from d365sap.engine.store import MessageStore
from d365sap.errors import PermanentError, TransientError
from d365sap.flows.sales_order_packer import BulkPacker, PackedOrder, SendAloneError
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import order_xml
from d365sap.web.serving import BackgroundServer, serving
from support.sales_order_data import S4_USER, SOAP_PATH, SOLD_TO, S4Admin, line, order

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-packer") as running:
        yield running


@pytest.fixture
def s4(server: BackgroundServer) -> S4Admin:
    admin = S4Admin(server.url)
    admin.reset()
    return admin


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
async def client(s4: S4Admin) -> AsyncIterator[SalesOrderBulkClient]:
    async with SalesOrderBulkClient(
        s4.url + SOAP_PATH, user=S4_USER[0], password=S4_USER[1], timeout=5.0
    ) as opened:
        yield opened


def packer(store: MessageStore, client: SalesOrderBulkClient, **options: float) -> BulkPacker:
    return BulkPacker(
        store,
        client,
        sender_system="D365",
        max_orders=int(options.get("max_orders", 20)),
        max_bytes=int(options.get("max_bytes", 1_000_000)),
        window_seconds=options.get("window", 0.05),
    )


def packed(*, broken: bool = False) -> PackedOrder:
    mapped = sales_order(order(line(), line("SK-20")), SOLD_TO, SalesOrderSettings())
    if broken:
        mapped = mapped.model_copy(update={"order_type": "TOOLONG"})
    return PackedOrder(str(uuid.uuid4()), mapped.order_id, order_xml(mapped), 2)


async def test_orders_ready_together_go_out_in_one_bulk_message(
    s4: S4Admin, store: MessageStore, client: SalesOrderBulkClient
) -> None:
    bulk = packer(store, client)
    orders = [packed() for _ in range(4)]
    dispatches = await asyncio.gather(*(bulk.submit(o) for o in orders))
    assert {d.batch_id for d in dispatches} == {dispatches[0].batch_id}
    assert [d.position for d in dispatches] == [1, 2, 3, 4]
    assert {(d.orders, d.status) for d in dispatches} == {(4, 202)}
    assert (bulk.stats.requests, bulk.stats.orders, bulk.stats.lines) == (1, 4, 8)
    outbox = Outbox(store)
    items = outbox.in_batch(dispatches[0].batch_id)
    assert [(i.message_id, i.reference, i.state) for i in items] == [
        (o.message_id, o.reference, SENT) for o in orders
    ]
    s4.wait()
    [message] = s4.messages()
    assert (message["message_id"], message["order_count"]) == (dispatches[0].batch_id, 4)
    assert all(len(s4.orders(o.reference)) == 1 for o in orders)


async def test_bulks_are_cut_at_their_size_and_byte_limits(
    s4: S4Admin, store: MessageStore, client: SalesOrderBulkClient
) -> None:
    by_count = packer(store, client, max_orders=2)
    dispatches = await asyncio.gather(*(by_count.submit(packed()) for _ in range(5)))
    assert sorted(d.orders for d in dispatches) == [1, 2, 2, 2, 2]
    assert by_count.stats.requests == 3
    one = len(packed().node)
    by_bytes = packer(store, client, max_bytes=2 * one + 800)
    dispatches = await asyncio.gather(*(by_bytes.submit(packed()) for _ in range(4)))
    assert {d.orders for d in dispatches} == {2}
    assert max(by_bytes.stats.sizes) <= 2 * one + 800


async def test_an_unknown_outcome_leaves_the_bulk_to_be_resent_as_recorded(
    s4: S4Admin, store: MessageStore, client: SalesOrderBulkClient
) -> None:
    bulk = packer(store, client)
    s4.next_fault("drop_after_commit")
    orders = [packed(), packed()]
    results = await asyncio.gather(*(bulk.submit(o) for o in orders), return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in results)
    outbox = Outbox(store)
    [first, second] = [outbox.latest_for(o.reference) for o in orders]
    assert first is not None and second is not None
    assert (first.state, second.state, first.batch_id) == (PENDING, PENDING, second.batch_id)
    recorded = outbox.batch(first.batch_id)
    assert recorded is not None and (recorded.state, recorded.attempts) == (SENDING, 1)
    # both members retry at once: one request, with the recorded body and id
    acknowledgements = await asyncio.gather(
        bulk.resend(first.batch_id), bulk.resend(first.batch_id)
    )
    assert acknowledgements[0] is acknowledgements[1]
    assert bulk.stats.resends == 1
    assert await bulk.resend(first.batch_id) is None  # already taken
    s4.wait()
    assert [m["state"] for m in s4.messages()] == ["processed", "duplicate"]
    assert {m["message_id"] for m in s4.messages()} == {first.batch_id}
    assert all(len(s4.orders(o.reference)) == 1 for o in orders)
    items = outbox.in_batch(first.batch_id)
    assert {i.state for i in items} == {SENT}


async def test_a_bulk_refused_as_a_whole_sends_its_orders_alone(
    s4: S4Admin, store: MessageStore, client: SalesOrderBulkClient
) -> None:
    bulk = packer(store, client)
    good, bad = packed(), packed(broken=True)
    results = await asyncio.gather(bulk.submit(good), bulk.submit(bad), return_exceptions=True)
    assert all(isinstance(r, SendAloneError) for r in results)
    outbox = Outbox(store)
    refused = outbox.latest_for(good.reference)
    assert refused is not None and refused.state == REFUSED
    alone = await bulk.submit_alone(good)
    assert alone.orders == 1
    with pytest.raises(PermanentError) as caught:
        await bulk.submit_alone(bad)
    assert not isinstance(caught.value, SendAloneError)
    assert "SalesOrderType" in (caught.value.backend_message or "")
    latest = outbox.latest_for(bad.reference)
    assert latest is not None and latest.state == REFUSED
    s4.wait()
    assert len(s4.orders(good.reference)) == 1
    with pytest.raises(PermanentError, match="refused"):
        await bulk.resend(refused.batch_id)


async def test_a_transient_failure_reaches_every_member(
    s4: S4Admin, store: MessageStore, client: SalesOrderBulkClient
) -> None:
    bulk = packer(store, client)
    s4.next_fault("error", status=503)
    results = await asyncio.gather(
        bulk.submit(packed()), bulk.submit(packed()), return_exceptions=True
    )
    assert [type(r) for r in results] == [TransientError, TransientError]
    await bulk.aclose()
