"""The delta poll against the Dataverse emulator over TLS: baseline, deltas, deletions,
a page handed on twice, an expired delta token, the schedule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import ensure_tls
from d365sap.engine.checkpoints import Advance, Checkpoint, CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.engine.views import MessageView
from d365sap.flows.dataverse_messages import (
    FLOW_NAME,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    decode_change,
)
from d365sap.flows.dataverse_poller import (
    DataversePoller,
    TablePoll,
    checkpoint_name,
    deletion_source_id,
    delta_source_id,
)
from d365sap.service import Service
from support.dataverse_api import ACCOUNT_US1, DETAIL_US1, ERP_ACCOUNT_US1
from support.dataverse_server import RunningDataverse, dataverse_server
from support.describing_flow import DescribingFlow

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
TABLES = (ChangeTable.ERP_ACCOUNT_DETAIL, ChangeTable.ERP_ACCOUNT, ChangeTable.ACCOUNT)


@pytest.fixture
def dataverse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDataverse]:
    tls = ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))
    settings = DataverseEmulatorSettings(
        change_tracking=ChangeTrackingSettings(max_changes_per_table=5)
    )
    with dataverse_server(tls, settings) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
async def service(store: MessageStore) -> AsyncIterator[Service]:
    built = Service(Settings(), store=store, serve_jobs=False)
    built.flows.setdefault(FLOW_NAME, DescribingFlow())
    yield built
    await built.stop()


@pytest.fixture
async def client(dataverse: RunningDataverse) -> AsyncIterator[DataverseClient]:
    async with dataverse.client() as opened:
        yield opened


def polls(
    service: Service,
    client: DataverseClient,
    *,
    initial: Literal["baseline", "submit"] = "baseline",
    checkpoints: CheckpointStore | None = None,
) -> list[TablePoll]:
    return [
        TablePoll(
            table,
            intake=service.intake,
            checkpoints=checkpoints or CheckpointStore(service.store),
            client=client,
            initial=initial,
        )
        for table in TABLES
    ]


def stored(store: MessageStore) -> list[MessageView]:
    return store.list(flow=FLOW_NAME, limit=None, oldest_first=True)


def changes(store: MessageStore) -> dict[str, DataverseChange]:
    return {m.source_id or "": decode_change(m.payload) for m in stored(store)}


def version_of(dataverse: RunningDataverse, entity_set: str, row_id: str) -> int:
    row = dataverse.admin("GET", f"/emulator/rows/{entity_set}/{row_id}").json()
    return int(row["versionnumber"])


async def test_baseline_then_deltas_with_stable_source_ids(
    dataverse: RunningDataverse, client: DataverseClient, service: Service, store: MessageStore
) -> None:
    poller = DataversePoller(polls(service, client), interval_seconds=60)
    first = await poller.poll_once()
    assert set(first) == {checkpoint_name(t) for t in TABLES}
    assert stored(store) == []  # the first pass only records versions
    checkpoints = CheckpointStore(store)
    assert checkpoints.version_count("dataverse:sap_erpaccountdetails") == len(
        dataverse.rows("sap_erpaccountdetails")
    )

    await client.update("sap_erpaccountdetails", DETAIL_US1, {"sap_salesgroup": "171"})
    created = await client.create("accounts", {"name": "Delta GmbH", "address1_country": "DE"})
    await poller.poll_once()
    found = changes(store)
    detail_version = version_of(dataverse, "sap_erpaccountdetails", DETAIL_US1)
    account_id = str(created.row_id)
    account_version = version_of(dataverse, "accounts", account_id)
    assert found == {
        delta_source_id(ChangeTable.ERP_ACCOUNT_DETAIL, DETAIL_US1, str(detail_version)): (
            DataverseChange(
                table=ChangeTable.ERP_ACCOUNT_DETAIL,
                id=uuid.UUID(DETAIL_US1),
                account_id=uuid.UUID(ACCOUNT_US1),
                change=ChangeKind.UPDATE,
                source=ChangeSource.DELTA,
                version=detail_version,
            )
        ),
        delta_source_id(ChangeTable.ACCOUNT, account_id, str(account_version)): DataverseChange(
            table=ChangeTable.ACCOUNT,
            id=uuid.UUID(account_id),
            account_id=uuid.UUID(account_id),
            change=ChangeKind.CREATE,
            source=ChangeSource.DELTA,
            version=account_version,
        ),
    }
    assert all(m.business_key == ACCOUNT_US1 or m.business_key == account_id for m in stored(store))

    await poller.poll_once()  # nothing changed since
    assert len(stored(store)) == 2
    assert poller.stats.submitted == 2 and poller.stats.errors == 0


async def test_deletion_is_handed_on_with_the_last_version(
    dataverse: RunningDataverse, client: DataverseClient, service: Service, store: MessageStore
) -> None:
    poller = DataversePoller(polls(service, client), interval_seconds=60)
    await poller.poll_once()
    last = version_of(dataverse, "sap_erpaccounts", ERP_ACCOUNT_US1)
    await client.delete("sap_erpaccounts", ERP_ACCOUNT_US1)  # cascades to its details
    await poller.poll_once()
    found = changes(store)
    source = deletion_source_id(ChangeTable.ERP_ACCOUNT, ERP_ACCOUNT_US1, str(last))
    assert found[source] == DataverseChange(
        table=ChangeTable.ERP_ACCOUNT,
        id=uuid.UUID(ERP_ACCOUNT_US1),
        change=ChangeKind.DELETE,
        source=ChangeSource.DELTA,
    )
    deleted_details = [c for c in found.values() if c.table is ChangeTable.ERP_ACCOUNT_DETAIL]
    assert [c.id for c in deleted_details] == [uuid.UUID(DETAIL_US1)]
    assert deleted_details[0].change is ChangeKind.DELETE


class CrashingCheckpoints(CheckpointStore):
    """Fails the first save that would record rows handed on: a crash after the handler."""

    crashed = False

    def save(self, current: Checkpoint, advance: Advance) -> Checkpoint:
        if advance.seen and current.phase == "delta" and not self.crashed:
            self.crashed = True
            raise RuntimeError("process killed before the page was checkpointed")
        return super().save(current, advance)


async def test_page_handed_on_again_after_a_crash_is_deduplicated(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    checkpoints = CrashingCheckpoints(store)
    [detail_poll] = polls(service, client, checkpoints=checkpoints)[:1]
    await detail_poll.run()  # baseline
    await client.update("sap_erpaccountdetails", DETAIL_US1, {"sap_salesgroup": "172"})
    with pytest.raises(RuntimeError):
        await detail_poll.run()
    assert len(stored(store)) == 1  # submitted, but the checkpoint did not move
    await detail_poll.run()  # the same page again
    assert len(stored(store)) == 1
    assert detail_poll.submitted == 1 and detail_poll.duplicates == 1


async def test_expired_delta_token_rebaselines_and_hands_on_only_changes(
    dataverse: RunningDataverse, client: DataverseClient, service: Service, store: MessageStore
) -> None:
    poller = DataversePoller(polls(service, client), interval_seconds=60)
    await poller.poll_once()
    renamed = {}
    for number in range(7):  # more than the emulator's change log keeps for the table
        created = await client.create("accounts", {"name": f"Expiry {number}"})
        renamed[str(created.row_id)] = number
    await client.update("accounts", ACCOUNT_US1, {"name": "Inlandskunde US 1 (renamed)"})
    reports = await poller.poll_once()
    assert reports["dataverse:accounts"].rebaselined
    accounts = {c.id for c in changes(store).values() if c.table is ChangeTable.ACCOUNT}
    assert accounts == {uuid.UUID(i) for i in renamed} | {uuid.UUID(ACCOUNT_US1)}
    kinds = {c.change for c in changes(store).values()}
    assert kinds == {ChangeKind.CREATE, ChangeKind.UPDATE}
    assert not reports["dataverse:sap_erpaccountdetails"].rebaselined


async def test_initial_pass_can_submit_every_row_as_a_load(
    dataverse: RunningDataverse, client: DataverseClient, service: Service, store: MessageStore
) -> None:
    poller = DataversePoller(polls(service, client, initial="submit"), interval_seconds=60)
    await poller.poll_once()
    found = list(changes(store).values())
    details = [
        row
        async for page in client.pages(
            "sap_erpaccountdetails", select=["sap_erpaccountdetailid", "_sap_accountid_value"]
        )
        for row in page.rows
    ]
    loaded = [c for c in found if c.table is ChangeTable.ERP_ACCOUNT_DETAIL]
    assert len(loaded) == len(details)
    assert {c.change for c in found} == {ChangeKind.LOAD}
    by_id = {uuid.UUID(r["sap_erpaccountdetailid"]): r["_sap_accountid_value"] for r in details}
    assert all(str(c.account_id) == by_id[c.id] for c in loaded)


async def test_schedule_runs_rounds_until_stopped(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    poller = DataversePoller(polls(service, client), interval_seconds=0.2)
    poller.start()
    try:
        await wait_until(lambda: poller.stats.rounds >= 1)
        await client.update("accounts", ACCOUNT_US1, {"telephone1": "+1 555 0100"})
        await wait_until(lambda: len(stored(store)) == 1)
    finally:
        await poller.stop()
    rounds = poller.stats.rounds
    await asyncio.sleep(0.5)
    assert poller.stats.rounds == rounds


async def wait_until(condition: Any, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
