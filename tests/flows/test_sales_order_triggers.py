"""The delta poll of submitted orders against the Dataverse emulator over TLS: only the
Active-to-Submitted transition is handed on, once; re-saves and the first pass are not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import pytest

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.emulators.tls import ensure_tls
from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.flows.sales_order_messages import FLOW_NAME, decode_submitted, submitted_source_id
from d365sap.flows.sales_order_triggers import OrderStates, SubmittedOrderPoll
from d365sap.service import Service
from support.dataverse_server import RunningDataverse, dataverse_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
US_PRICE_LIST = "9c3e5a17-2b4d-4f6a-8e01-3d5b7c9e1a01"
ACCOUNT = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"


@pytest.fixture
def dataverse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDataverse]:
    with dataverse_server(ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))) as running:
        yield running


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


@pytest.fixture
async def client(dataverse: RunningDataverse) -> AsyncIterator[DataverseClient]:
    async with dataverse.client() as opened:
        yield opened


def poll(
    service: Service, client: DataverseClient, initial: Literal["baseline", "submit"] = "baseline"
) -> SubmittedOrderPoll:
    return SubmittedOrderPoll(
        intake=service.intake,
        checkpoints=CheckpointStore(service.store),
        client=client,
        initial=initial,
    )


async def new_order(client: DataverseClient, *, submitted: bool = False) -> str:
    order_id = str(uuid.uuid4())
    await client.create(
        "salesorders",
        {
            "salesorderid": order_id,
            "name": "Pumps",
            "customerid_account@odata.bind": f"/accounts({ACCOUNT})",
            "pricelevelid@odata.bind": f"/pricelevels({US_PRICE_LIST})",
            "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
        },
    )
    if submitted:
        await client.update("salesorders", order_id, {"statecode": 1, "statuscode": 3})
    return order_id


def version_of(dataverse: RunningDataverse, order_id: str) -> int:
    return int(
        dataverse.admin("GET", f"/emulator/rows/salesorders/{order_id}").json()["versionnumber"]
    )


async def test_only_the_transition_to_submitted_is_handed_on(
    dataverse: RunningDataverse, client: DataverseClient, service: Service, store: MessageStore
) -> None:
    before = await new_order(client, submitted=True)  # submitted before the poll started
    orders = poll(service, client)
    await orders.run()  # the first pass records what it finds
    assert store.list(flow=FLOW_NAME) == []
    assert OrderStates(store).get_many([before]) == {before: "1"}

    order_id = await new_order(client)
    await orders.run()
    assert store.list(flow=FLOW_NAME) == []  # created Active: nothing to send

    await client.update("salesorders", order_id, {"statecode": 1, "statuscode": 3})
    await orders.run()
    [message] = store.list(flow=FLOW_NAME)
    submitted = decode_submitted(message.payload)
    version = version_of(dataverse, order_id)
    assert (submitted.trigger, str(submitted.order_id), submitted.version) == (
        "delta",
        order_id,
        version,
    )
    assert message.source_id == submitted_source_id(order_id, version)
    assert (message.business_key, message.route, message.queue) == (
        order_id,
        "s4hc",
        "sales_orders",
    )

    await client.update("salesorders", order_id, {"description": "a note after submitting"})
    await client.update("salesorders", before, {"description": "an older one"})
    await orders.run()
    assert len(store.list(flow=FLOW_NAME)) == 1  # re-saves of submitted orders send nothing
    assert (orders.submitted, orders.duplicates) == (1, 0)


async def test_a_first_pass_that_submits_hands_on_submitted_orders(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    submitted = await new_order(client, submitted=True)
    active = await new_order(client)
    await poll(service, client, initial="submit").run()
    keys = {message.business_key for message in store.list(flow=FLOW_NAME)}
    assert submitted in keys and active not in keys
