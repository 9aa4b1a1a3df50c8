"""S/4's word on orders: the confirmation flow and the poller, against the S/4 emulator.

Orders really go to the emulator through the packer (so API_SALES_ORDER_SRV holds them); the
confirmation flow's verdicts are checked on the outbox, the write-back is left to the
end-to-end tests (no Dataverse here).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from d365sap.config import Settings
from d365sap.config_sales_orders import ConfirmationSettings, SalesOrderSettings
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.connectors.s4_soap import SalesOrderBulkClient
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.engine.outbox import CONFIRMED, OVERDUE, REJECTED, Outbox
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.flows.sales_order_confirmation import SalesOrderConfirmationFlow
from d365sap.flows.sales_order_messages import (
    CONFIRMATION_FLOW,
    FLOW_NAME,
    OrderFound,
    decode_found,
    encode,
)
from d365sap.flows.sales_order_packer import BulkPacker, Dispatch, PackedOrder
from d365sap.flows.sales_order_poll import ConfirmationPoller
from d365sap.flows.sales_order_writeback import OrderWriteBack
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import order_xml
from d365sap.service import Service
from d365sap.web.serving import BackgroundServer, serving
from support.sales_order_data import S4_USER, SO_SERVICE, SOAP_PATH, SOLD_TO, S4Admin, line, order

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-confirmations") as running:
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


class Desk:
    """Sends orders, builds S/4's words about them, runs the flow and the poller."""

    def __init__(self, s4: S4Admin, store: MessageStore, service: Service) -> None:
        self.s4, self.store, self.service = s4, store, service
        self.soap = SalesOrderBulkClient(s4.url + SOAP_PATH, user=S4_USER[0], password=S4_USER[1])
        self.reader = SalesOrderReader(s4.url + SO_SERVICE, user=S4_USER[0], password=S4_USER[1])
        self.packer = BulkPacker(store, self.soap, sender_system="D365", window_seconds=0.0)
        settings = SalesOrderSettings()
        self.flow = SalesOrderConfirmationFlow(
            settings=settings,
            store=store,
            write_back=OrderWriteBack(None, settings.write_back),
            reader=self.reader,
        )

    async def send(
        self, product: str = "CP-100", message_id: str | None = None
    ) -> tuple[str, Dispatch]:
        mapped = sales_order(order(line(product)), SOLD_TO, SalesOrderSettings())
        packed = PackedOrder(message_id or str(uuid.uuid4()), mapped.order_id, order_xml(mapped), 1)
        return mapped.order_id, await self.packer.submit(packed)

    async def run(self, payload: bytes) -> Any:
        return await self.flow.run(payload, Trace(), message_id=str(uuid.uuid4()))

    def poller(self, **options: Any) -> ConfirmationPoller:
        return ConfirmationPoller(
            store=self.store,
            intake=self.service.intake,
            reader=self.reader,
            settings=ConfirmationSettings(**options),
        )

    async def close(self) -> None:
        await self.packer.aclose()
        await self.soap.aclose()
        await self.reader.aclose()


@pytest.fixture
async def desk(s4: S4Admin, store: MessageStore) -> AsyncIterator[Desk]:
    service = Service(Settings(), store=store, serve_jobs=False)
    built = Desk(s4, store, service)
    yield built
    await built.close()
    await service.stop()


def confirmation(order_id: str, bulk_id: str | None, number: str | None) -> bytes:
    reference = f"<ReferenceID>{bulk_id}</ReferenceID>" if bulk_id else ""
    number_element = f"<SalesOrderID>{number}</SalesOrderID>" if number else ""
    code, item = (
        ("3", "<TypeID>311(V1)</TypeID><SeverityCode>1</SeverityCode><Note>saved</Note>")
        if number
        else ("5", "<TypeID>810(V1)</TypeID><SeverityCode>3</SeverityCode><Note>no product</Note>")
    )
    return f"""<n0:SalesOrderBulkConfirmation xmlns:n0="http://sap.com/xi/SD-SLS"
      xmlns:yy1="http://SAPCustomFields.com/YY1_">
      <MessageHeader><ID>{uuid.uuid4().hex}</ID>{reference}</MessageHeader>
      <SalesOrder>{number_element}<yy1:YY1_CRMOrderID>{order_id}</yy1:YY1_CRMOrderID></SalesOrder>
      <Log><BusinessDocumentProcessingResultCode>{code}</BusinessDocumentProcessingResultCode>
      <Item>{item}</Item></Log></n0:SalesOrderBulkConfirmation>""".encode()


async def test_a_confirmation_settles_the_order_it_names(desk: Desk) -> None:
    order_id, dispatch = await desk.send()
    result = await desk.run(confirmation(order_id, dispatch.batch_id, "4711"))
    assert (result.outcome, result.store_status(), result.sales_order) == (
        "confirmed",
        "done",
        "4711",
    )
    assert result.bulk.message_header_id == dispatch.batch_id
    assert result.write_back == "off"  # written back nowhere: no Dataverse here
    item = Outbox(desk.store).latest_for(order_id)
    assert item is not None and (item.state, item.target_ref) == (CONFIRMED, "4711")
    assert item.detail == "311(V1) saved"
    again = await desk.run(confirmation(order_id, None, "4711"))  # without a ReferenceID
    assert again.outcome == "confirmed"


async def test_a_rejection_fails_the_message_with_s4s_text(desk: Desk) -> None:
    order_id, dispatch = await desk.send()
    result = await desk.run(confirmation(order_id, dispatch.batch_id, None))
    assert (result.outcome, result.store_status(), result.http_status) == (
        "rejected",
        "failed",
        422,
    )
    assert result.error_text() == "S/4HANA Cloud rejected: 810(V1) no product"
    assert result.retry_hint() == (False, None)
    item = Outbox(desk.store).latest_for(order_id)
    assert item is not None and item.state == REJECTED


async def test_a_word_about_an_earlier_sending_is_superseded(desk: Desk) -> None:
    order_id, first = await desk.send()
    outbox = Outbox(desk.store)
    item = outbox.latest_for(order_id)
    assert item is not None
    outbox.settle_item(item.id, REJECTED, detail="rejected")
    mapped = sales_order(order(line(), order_id=uuid.UUID(order_id)), SOLD_TO, SalesOrderSettings())
    await desk.packer.submit(PackedOrder(str(uuid.uuid4()), order_id, order_xml(mapped), 1))
    late = await desk.run(confirmation(order_id, first.batch_id, None))
    assert (late.outcome, late.store_status()) == ("superseded", "done")
    assert "went out again" in late.reason


async def test_words_about_unknown_orders_are_discarded(desk: Desk) -> None:
    stranger = str(uuid.uuid4())
    result = await desk.run(confirmation(stranger, "NOBULK", "1"))
    assert (result.outcome, result.store_status()) == ("discarded", "discarded")
    assert stranger in result.reason and "NOBULK" in result.reason


async def test_a_word_about_a_bulk_d365sap_never_sent_is_discarded(desk: Desk) -> None:
    order_id, _ = await desk.send()
    result = await desk.run(confirmation(order_id, "SOMEONE-ELSES-BULK", "99"))
    assert result.outcome == "discarded"
    item = Outbox(desk.store).latest_for(order_id)
    assert item is not None and item.state == "sent"  # untouched


async def test_s4s_word_waits_for_the_orders_own_message(desk: Desk) -> None:
    submitted = await desk.service.intake.submit(
        FLOW_NAME, b"{}", content_type="application/json", correlation_id="c", source_id="x"
    )
    order_id, dispatch = await desk.send(message_id=submitted.message.id)
    result = await desk.run(confirmation(order_id, dispatch.batch_id, "1"))
    assert result.outcome == "error" and result.retry_hint() == (True, 1.0)
    assert "still queued" in result.error.message
    item = Outbox(desk.store).latest_for(order_id)
    assert item is not None and item.state == "sent"  # nothing recorded yet


async def test_the_poller_finds_created_orders_and_reports_overdue_ones(desk: Desk) -> None:
    created, _ = await desk.send()
    rejected, _ = await desk.send("CP-050")  # flagged for deletion in S/4: not created
    desk.s4.wait()
    poller = desk.poller(poll_after_seconds=0, deadline_seconds=3600)
    await poller.poll_once()
    stored = desk.store.list(flow=CONFIRMATION_FLOW)
    [found] = stored
    word = decode_found(found.payload)
    assert (word.kind, word.order_id, word.sales_order) == ("found", created, word.sales_order)
    assert word.sales_order == desk.s4.orders(created)[0]["SalesOrder"]
    assert found.source_id == f"found:{word.batch_id}:{created}"
    assert found.business_key == created
    await poller.poll_once()  # found again: the same message, not a second one
    assert len(desk.store.list(flow=CONFIRMATION_FLOW)) == 1
    assert (poller.stats.found, poller.stats.overdue, poller.stats.looked_up) == (1, 0, 4)

    late = desk.poller(poll_after_seconds=0, deadline_seconds=0.001)
    await late.poll_once()
    words = [decode_found(m.payload) for m in desk.store.list(flow=CONFIRMATION_FLOW)]
    [overdue] = [w for w in words if w.order_id == rejected]
    assert overdue.kind == "overdue" and late.stats.overdue == 1

    result = await desk.run(encode(overdue))  # one last look in S/4, then failed
    assert (result.outcome, result.store_status()) == ("error", "failed")
    assert "has not confirmed the order" in result.error.message
    item = Outbox(desk.store).latest_for(rejected)
    assert item is not None and item.state == OVERDUE
    lost = OrderFound(kind="overdue", batch_id=word.batch_id, order_id=created)
    assert (await desk.run(encode(lost))).outcome == "confirmed"  # the last look finds it


async def test_with_pushed_confirmations_the_poller_only_reports_overdue_orders(desk: Desk) -> None:
    await desk.send()
    desk.s4.wait()
    poller = desk.poller(channel="push", deadline_seconds=3600)
    await poller.poll_once()
    assert desk.store.list(flow=CONFIRMATION_FLOW) == []
    assert poller.stats.looked_up == 0
    hurried = ConfirmationPoller(
        store=desk.store,
        intake=desk.service.intake,
        reader=desk.reader,
        settings=ConfirmationSettings(channel="push", deadline_seconds=60),
        clock=lambda: datetime.now(UTC) + timedelta(minutes=5),
    )
    await hurried.poll_once()
    [overdue] = desk.store.list(flow=CONFIRMATION_FLOW)
    assert decode_found(overdue.payload).kind == "overdue"
