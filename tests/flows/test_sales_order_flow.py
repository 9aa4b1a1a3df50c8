"""The sales order flow's run and dry run against the S/4 emulator, with a real store and registry.

Orders are pushed orders (the payload carries the order; Dynamics is not asked and nothing is
written back), stored through the service's intake without being processed, then run here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.config import Settings
from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.connectors.s4_soap import SalesOrderBulkClient
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.engine.outbox import OVERDUE, REJECTED, SENT, Outbox
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea
from d365sap.flows.sales_order import SalesOrderFlow
from d365sap.flows.sales_order_customer import CustomerKeys, parse_sales_area
from d365sap.flows.sales_order_messages import FLOW_NAME
from d365sap.flows.sales_order_packer import BulkPacker
from d365sap.flows.sales_order_writeback import OrderWriteBack
from d365sap.model.sales_order import DynamicsOrder
from d365sap.service import Service
from d365sap.web.serving import BackgroundServer, serving
from support.sales_order_data import (
    ACCOUNT,
    S4_USER,
    SO_SERVICE,
    SOAP_PATH,
    S4Admin,
    line,
    order,
    pushed_json,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-order-flow") as running:
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
async def service(store: MessageStore) -> AsyncIterator[Service]:
    built = Service(Settings(), store=store, serve_jobs=False)
    yield built
    await built.stop()


class Harness:
    """A flow wired to the emulator, and the intake to store its messages."""

    def __init__(self, s4: S4Admin, store: MessageStore, service: Service) -> None:
        self.s4, self.store, self.service = s4, store, service
        self.registry = KeyRegistry(store)
        self.soap = SalesOrderBulkClient(
            s4.url + SOAP_PATH, user=S4_USER[0], password=S4_USER[1], timeout=5.0
        )
        self.reader = SalesOrderReader(s4.url + SO_SERVICE, user=S4_USER[0], password=S4_USER[1])
        self.packer = BulkPacker(store, self.soap, sender_system="D365", window_seconds=0.01)

    def flow(self, **options: Any) -> SalesOrderFlow:
        max_attempts = int(options.pop("max_attempts", 8))
        settings = SalesOrderSettings.model_validate(options)
        return SalesOrderFlow(
            settings=settings,
            store=self.store,
            packer=self.packer,
            customers=CustomerKeys(self.registry, preferred=parse_sales_area(settings.sales_area)),
            dataverse=None,
            write_back=OrderWriteBack(None, settings.write_back),
            max_attempts=max_attempts,
            reader=self.reader,
        )

    def customer(
        self, number: str = "17100002", area: tuple[str, str, str] = ("1710", "10", "00")
    ) -> None:
        key = RecordKey("s4hc", str(ACCOUNT), SalesArea(*area), str(uuid.uuid4()))
        self.registry.reserve(key, "setup", customer=number)
        self.registry.confirm(key, "setup", customer=number)

    async def store_message(self, dynamics: DynamicsOrder, source_id: str | None = None) -> str:
        submitted = await self.service.intake.submit(
            FLOW_NAME,
            pushed_json(dynamics),
            content_type="application/json",
            correlation_id="test",
            source_id=source_id or str(uuid.uuid4()),
        )
        return submitted.message.id

    async def run(self, flow: SalesOrderFlow, dynamics: DynamicsOrder, message_id: str) -> Any:
        trace = Trace()
        result = await flow.run(pushed_json(dynamics), trace, message_id=message_id)
        return result, trace

    async def close(self) -> None:
        await self.packer.aclose()
        await self.soap.aclose()
        await self.reader.aclose()


@pytest.fixture
async def harness(s4: S4Admin, store: MessageStore, service: Service) -> AsyncIterator[Harness]:
    built = Harness(s4, store, service)
    yield built
    await built.close()


async def test_an_order_is_sent_once_whatever_runs_it_again(harness: Harness) -> None:
    harness.customer()
    flow = harness.flow()
    dynamics = order(line(), line("SK-20", "3"))
    message_id = await harness.store_message(dynamics)
    result, trace = await harness.run(flow, dynamics, message_id)

    assert (result.outcome, result.http_status, result.store_status()) == ("sent", 202, "done")
    assert result.keys == {
        "SalesOrderID": str(dynamics.order_id),
        "OrderNumber": dynamics.order_number,
        "SoldToParty": "17100002",
    }
    assert result.bulk.orders == 1 and result.backend_status == 202
    assert [step.name for step in trace.steps] == [
        "parse",
        "outbox.check",
        "registry.customer",
        "map",
        "s4.send_bulk",
        "dataverse.write_back",
    ]
    assert trace.steps[-1].status == "skipped"  # no Dataverse in this set-up
    item = Outbox(harness.store).latest_for(str(dynamics.order_id))
    assert item is not None and (item.state, item.message_id) == (SENT, message_id)

    again, _ = await harness.run(flow, dynamics, message_id)  # a retry of the same message
    assert (again.outcome, again.bulk.message_header_id) == ("sent", result.bulk.message_header_id)
    other = await harness.store_message(dynamics)
    duplicate, _ = await harness.run(flow, dynamics, other)  # another message of the order
    assert (duplicate.outcome, duplicate.store_status()) == ("already_sent", "done")
    assert message_id in duplicate.reason
    harness.s4.wait()
    assert len(harness.s4.messages()) == 1
    assert len(harness.s4.orders(str(dynamics.order_id))) == 1


async def test_an_order_s4_rejected_goes_out_anew(harness: Harness) -> None:
    harness.customer()
    flow = harness.flow()
    dynamics = order()
    first = await harness.store_message(dynamics)
    await harness.run(flow, dynamics, first)
    outbox = Outbox(harness.store)
    item = outbox.latest_for(str(dynamics.order_id))
    assert item is not None
    outbox.settle_item(item.id, REJECTED, detail="810(V1) product unknown")
    result, _ = await harness.run(flow, dynamics, first)  # the operator's retry
    assert result.outcome == "sent"
    assert result.bulk.message_header_id != item.batch_id
    assert [i.batch_id for i in outbox.of_message(first)][1] == item.batch_id


async def test_an_overdue_order_goes_out_again_only_by_its_own_message(harness: Harness) -> None:
    harness.customer()
    flow = harness.flow()
    dynamics = order()
    first = await harness.store_message(dynamics)
    await harness.run(flow, dynamics, first)
    outbox = Outbox(harness.store)
    item = outbox.latest_for(str(dynamics.order_id))
    assert item is not None
    outbox.settle_item(item.id, OVERDUE, detail="no word from S/4")
    other, _ = await harness.run(flow, dynamics, await harness.store_message(dynamics))
    assert other.outcome == "already_sent"  # a redelivery is no reason to send it twice
    again, _ = await harness.run(flow, dynamics, first)  # the operator's forced retry
    assert again.outcome == "sent" and again.bulk.message_header_id != item.batch_id


async def test_an_unsynchronised_customer_waits_then_fails(harness: Harness) -> None:
    dynamics = order()
    message_id = await harness.store_message(dynamics)
    waiting, trace = await harness.run(harness.flow(customer_retry_seconds=7), dynamics, message_id)
    assert (waiting.outcome, waiting.store_status()) == ("error", "failed")
    assert waiting.retry_hint() == (True, 7)
    assert "not synchronised" in waiting.error.message and "left" in waiting.error.message
    assert trace.steps[-1].name == "registry.customer"
    assert harness.s4.messages() == []

    late, _ = await harness.run(harness.flow(customer_wait_seconds=0), dynamics, message_id)
    assert late.retry_hint() == (False, None)
    assert "after waiting" in late.error.message
    last, _ = await harness.run(harness.flow(max_attempts=0), dynamics, message_id)
    assert last.retry_hint() == (False, None)  # the runtime has no attempt left

    harness.customer()
    sent, _ = await harness.run(harness.flow(), dynamics, message_id)
    assert sent.outcome == "sent"


async def test_a_customer_with_several_sales_areas_needs_one_chosen(harness: Harness) -> None:
    harness.customer("17100002", ("1710", "10", "00"))
    harness.customer("17100002", ("1710", "20", "00"))
    dynamics = order()
    message_id = await harness.store_message(dynamics)
    refused, _ = await harness.run(harness.flow(), dynamics, message_id)
    assert refused.outcome == "error" and "sales_area" in refused.error.message
    chosen, _ = await harness.run(harness.flow(sales_area="1710/10/00"), dynamics, message_id)
    assert (chosen.outcome, chosen.keys["SoldToParty"]) == ("sent", "17100002")


async def test_a_sender_may_name_the_sold_to_party(harness: Harness) -> None:
    dynamics = order(
        customer_id=None,
        sold_to="17100004",
        sales_organization="1710",
        distribution_channel="10",
        division="00",
    )
    message_id = await harness.store_message(dynamics)
    result, trace = await harness.run(harness.flow(), dynamics, message_id)
    assert (result.outcome, result.keys["SoldToParty"]) == ("sent", "17100004")
    assert "(sender)" in (trace.steps[2].detail or "")


async def test_discards_and_mapping_errors(harness: Harness) -> None:
    harness.customer()
    ecc = order(erp_system_type="ECC")
    discarded, _ = await harness.run(harness.flow(), ecc, await harness.store_message(ecc))
    assert (discarded.outcome, discarded.http_status, discarded.store_status()) == (
        "discarded",
        202,
        "discarded",
    )
    assert "'ECC'" in discarded.reason
    boxed = order(line(unit="Box"))
    invalid, _ = await harness.run(harness.flow(), boxed, await harness.store_message(boxed))
    assert (invalid.outcome, invalid.http_status) == ("error", 400)
    assert invalid.error.field == "lines[0].uom"
    assert harness.s4.messages() == []


async def test_the_flow_describes_its_messages(harness: Harness) -> None:
    flow = harness.flow(queue="orders")
    dynamics = order()
    described = flow.describe(pushed_json(dynamics))
    assert (described.route, described.business_key, described.queue) == (
        "s4hc",
        str(dynamics.order_id),
        "orders",
    )
    assert flow.describe(pushed_json(order(erp_system_type="ECC"))).route == "discard"
    assert flow.describe(b"garbage").route is None
    assert flow.describe(b"garbage").queue == "orders"


async def test_dry_runs_tell_without_sending(harness: Harness) -> None:
    flow = harness.flow()
    dynamics = order()
    waiting = await flow.dry_run(pushed_json(dynamics))
    assert (waiting.outcome, waiting.ok) == ("would_fail", False)
    harness.customer()
    plan = await flow.dry_run(pushed_json(dynamics))
    assert (plan.outcome, plan.ok) == ("would_send", True)
    assert plan.request is not None and plan.request.url.endswith(SOAP_PATH)
    assert str(dynamics.order_id) in plan.request.body
    assert "schema: valid" in plan.checks
    invalid = await flow.dry_run(pushed_json(order(line(unit="Box"))))
    assert (invalid.outcome, invalid.problems[0].field) == ("invalid", "lines[0].uom")
    assert (await flow.dry_run(pushed_json(order(erp_system_type="ECC")))).outcome == (
        "would_discard"
    )
    assert harness.s4.messages() == []  # nothing was sent
    await harness.run(flow, dynamics, await harness.store_message(dynamics))
    assert (await flow.dry_run(pushed_json(dynamics))).outcome == "already_sent"
