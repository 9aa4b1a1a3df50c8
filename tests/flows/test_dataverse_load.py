"""The initial load against the Dataverse emulator: which accounts, one message each, checkpoints
after every page, resume after a crash without doubling, restart, dry run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.emulators.tls import ensure_tls
from d365sap.engine.checkpoints import Advance, CheckpointStore
from d365sap.engine.source_runs import run_counts, run_messages
from d365sap.engine.store import MessageStore
from d365sap.flows.dataverse_load import (
    CustomerLoad,
    PageDone,
    checkpoint_name,
    run_prefix,
)
from d365sap.flows.dataverse_messages import (
    FLOW_NAME,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    decode_change,
)
from d365sap.service import Service
from support.dataverse_api import ACCOUNT_MUSTER, ACCOUNT_NORDLICHT, ACCOUNT_US1, ACCOUNT_US2
from support.dataverse_server import RunningDataverse, dataverse_server
from support.describing_flow import DescribingFlow

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
WITH_ERP_DATA = {ACCOUNT_US1, ACCOUNT_US2, ACCOUNT_MUSTER, ACCOUNT_NORDLICHT}


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
    built.flows.setdefault(FLOW_NAME, DescribingFlow())
    yield built
    await built.stop()


@pytest.fixture
async def client(dataverse: RunningDataverse) -> AsyncIterator[DataverseClient]:
    async with dataverse.client() as opened:
        yield opened


def make_load(
    client: DataverseClient, service: Service, *, page_size: int = 2, **options: Any
) -> CustomerLoad:
    return CustomerLoad(
        client, service.intake, CheckpointStore(service.store), page_size=page_size, **options
    )


class Pages:
    """Records the pages; can stop the load after a number of them (a killed process)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.pages: list[PageDone] = []
        self.stop_after = stop_after

    async def __call__(self, page: PageDone) -> None:
        self.pages.append(page)
        if self.stop_after is not None and len(self.pages) >= self.stop_after:
            raise KeyboardInterrupt


def loaded(store: MessageStore, run_id: str) -> dict[str, DataverseChange]:
    by_source = {}
    for message in store.list(flow=FLOW_NAME, limit=None):
        if message.source_id and message.source_id.startswith(run_prefix(run_id)):
            by_source[message.source_id] = decode_change(message.payload)
    return by_source


async def test_one_load_message_per_account_with_erp_data(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    await client.create("accounts", {"name": "No ERP data Ltd"})
    load = make_load(client, service)
    run = await load.prepare()
    assert not run.resumed
    assert await load.count() == len(WITH_ERP_DATA) + 1
    pages = Pages()
    await load.run(run, pages)
    assert [p.accounts for p in pages.pages] == [2, 2, 1]
    assert sum(p.submitted for p in pages.pages) == 4
    assert sum(p.without_erp_data for p in pages.pages) == 1
    found = loaded(store, run.run_id)
    assert set(found) == {f"load:{run.run_id}:{account}" for account in WITH_ERP_DATA}
    for source_id, change in found.items():
        account = uuid.UUID(source_id.rsplit(":", 1)[-1])
        assert change == DataverseChange(
            table=ChangeTable.ACCOUNT,
            id=account,
            account_id=account,
            change=ChangeKind.LOAD,
            source=ChangeSource.LOAD,
            version=change.version,
        )
        assert change.version is not None and change.version > 0
    checkpoint = CheckpointStore(store).get(checkpoint_name(None, dry_run=False))
    assert checkpoint is not None
    assert (checkpoint.passes, checkpoint.pages, checkpoint.rows) == (1, 3, 5)
    assert checkpoint.next_link is None and checkpoint.pass_id == run.run_id
    assert run_counts(store, FLOW_NAME, run.prefix) == {"queued": 4}


async def test_filter_narrows_the_accounts(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    load = make_load(client, service, user_filter="address1_country eq 'US'")
    run = await load.prepare()
    assert await load.count() == 2
    await load.run(run, Pages())
    accounts = {c.id for c in loaded(store, run.run_id).values()}
    assert accounts == {uuid.UUID(ACCOUNT_US1), uuid.UUID(ACCOUNT_US2)}


async def test_killed_load_resumes_from_the_last_page_without_doubling(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    first = make_load(client, service, page_size=1)
    run = await first.prepare()
    with pytest.raises(KeyboardInterrupt):
        await first.run(run, Pages(stop_after=2))
    assert len(loaded(store, run.run_id)) == 2

    again = make_load(client, service, page_size=1)
    resumed = await again.prepare()
    assert resumed.resumed and resumed.run_id == run.run_id
    assert (resumed.accounts_before, resumed.submitted_before) == (2, 2)
    pages = Pages()
    await again.run(resumed, pages)
    assert [p.submitted for p in pages.pages] == [1, 1]  # only the two pages not saved
    assert {c.id for c in loaded(store, run.run_id).values()} == {
        uuid.UUID(a) for a in WITH_ERP_DATA
    }
    assert len(run_messages(store, FLOW_NAME, run.prefix)) == 4

    finished = await make_load(client, service, page_size=1).prepare()
    assert not finished.resumed and finished.run_id != run.run_id  # a finished run: a new one


async def test_saved_link_no_longer_honoured_reads_again_under_the_same_run(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    first = make_load(client, service, page_size=1)
    run = await first.prepare()
    with pytest.raises(KeyboardInterrupt):
        await first.run(run, Pages(stop_after=1))
    checkpoints = CheckpointStore(store)
    saved = checkpoints.get(first.name)
    assert saved is not None and saved.next_link is not None
    broken = saved.next_link.replace("$skiptoken=", "$skiptoken=broken")
    checkpoints.save(
        saved,
        Advance(
            phase=saved.phase,
            next_link=broken,
            delta_link=saved.delta_link,
            pass_id=saved.pass_id,
            pages=saved.pages,
            rows=saved.rows,
            emitted=saved.emitted,
            emitted_total=saved.emitted_total,
            passes=saved.passes,
        ),
    )
    again = make_load(client, service, page_size=1)
    resumed = await again.prepare()
    pages = Pages()
    assert resumed.start_link == broken
    await again.run(resumed, pages)
    assert sum(p.duplicates for p in pages.pages) == 1
    assert len(run_messages(store, FLOW_NAME, run.prefix)) == 4


async def test_restart_starts_a_new_run(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    first = make_load(client, service)
    run = await first.prepare()
    with pytest.raises(KeyboardInterrupt):
        await first.run(run, Pages(stop_after=1))
    restarted = await make_load(client, service).prepare(restart=True)
    assert not restarted.resumed and restarted.run_id != run.run_id
    assert restarted.start_link is None


async def test_dry_run_has_its_own_checkpoint_and_flags_every_message(
    client: DataverseClient, service: Service, store: MessageStore
) -> None:
    real = make_load(client, service)
    with pytest.raises(KeyboardInterrupt):
        await real.run(await real.prepare(), Pages(stop_after=1))
    dry = make_load(client, service, dry_run=True)
    assert dry.name != real.name
    run = await dry.prepare()
    assert not run.resumed  # the unfinished real load is not resumed by a dry run
    await dry.run(run, Pages())
    changes = loaded(store, run.run_id)
    assert len(changes) == 4 and all(c.dry_run for c in changes.values())
