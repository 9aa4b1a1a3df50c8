"""The change loader reading Dataverse change tracking through the connector, over TLS.

The emulator keeps three changes per table here, so a fourth change expires the saved delta
token on the spot: the loader re-baselines and hands on only what changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.connectors.dataverse_feed import DataverseFeed, row_identity
from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.engine.change_loader import ChangeBatch, ChangeLoader, RebaselineCapExceededError
from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.errors import PermanentError
from support.dataverse_api import ACCOUNT_MUSTER, ACCOUNT_NORDLICHT, ACCOUNT_US1
from support.dataverse_server import RunningDataverse, dataverse_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
NAME = "dataverse:accounts"


@pytest.fixture
def dataverse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDataverse]:
    tls: TlsFiles = ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))
    settings = DataverseEmulatorSettings(
        change_tracking=ChangeTrackingSettings(max_changes_per_table=3)
    )
    with dataverse_server(tls, settings) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


class Seen:
    def __init__(self) -> None:
        self.batches: list[ChangeBatch] = []

    async def __call__(self, batch: ChangeBatch) -> None:
        self.batches.append(batch)

    def names(self) -> dict[str, Any]:
        return {str(r["accountid"]): r.get("name") for b in self.batches for r in b.upserts}

    def removed(self) -> list[str]:
        return [row_id for batch in self.batches for row_id in batch.removals]


async def test_initial_load_delta_and_rebaseline(
    dataverse: RunningDataverse, store: MessageStore
) -> None:
    checkpoints = CheckpointStore(store)
    async with dataverse.client() as client:
        feed = DataverseFeed(client, "accounts", select=["name"])
        identity = row_identity("accountid")

        def loader(cap: int = 100) -> ChangeLoader:
            return ChangeLoader(checkpoints, NAME, feed, identity, rebaseline_cap=cap)

        initial = Seen()
        await loader().run(initial)
        assert set(initial.names()) == {row["accountid"] for row in dataverse.rows("accounts")}

        delta = Seen()
        new = await client.create("accounts", {"name": "Delta One"})
        await client.update("accounts", ACCOUNT_US1, {"name": "Renamed US 1"})
        report = await loader().run(delta)
        assert delta.names() == {new.row_id: "Delta One", ACCOUNT_US1: "Renamed US 1"}
        assert (report.phase, report.rebaselined) == ("delta", False)

        # Four changes while nobody reads: the log drops one and the token expires.
        late = await client.create("accounts", {"name": "Late"})
        await client.update("accounts", ACCOUNT_MUSTER, {"name": "Muster Renamed"})
        await client.update("accounts", ACCOUNT_MUSTER, {"telephone1": "+49 30 1"})  # no name
        await client.delete("accounts", ACCOUNT_NORDLICHT)
        rebaselined = Seen()
        report = await loader().run(rebaselined)
        saved = checkpoints.get(NAME)

        after = Seen()
        await client.update("accounts", ACCOUNT_US1, {"name": "Back to delta"})
        await loader().run(after)

    assert report.rebaselined and report.phase == "delta"
    assert rebaselined.names() == {late.row_id: "Late", ACCOUNT_MUSTER: "Muster Renamed"}
    assert rebaselined.removed() == [ACCOUNT_NORDLICHT]
    assert saved is not None and saved.delta_link is not None and saved.alarm is None
    assert after.names() == {ACCOUNT_US1: "Back to delta"}


async def test_a_big_rebaseline_raises_the_alarm(
    dataverse: RunningDataverse, store: MessageStore
) -> None:
    checkpoints = CheckpointStore(store)
    async with dataverse.client() as client:
        feed = DataverseFeed(client, "accounts", select=["name"])
        await ChangeLoader(checkpoints, NAME, feed, row_identity("accountid")).run(Seen())
        for number in range(5):
            await client.create("accounts", {"name": f"Bulk {number}"})
        handler = Seen()
        loader = ChangeLoader(checkpoints, NAME, feed, row_identity("accountid"), rebaseline_cap=3)
        with pytest.raises(RebaselineCapExceededError):
            await loader.run(handler)
    stopped = checkpoints.get(NAME)
    assert handler.batches == []  # the one page held five: nothing was handed on
    assert stopped is not None and stopped.phase == "rebaseline"
    assert stopped.alarm is not None and "cap of 3" in stopped.alarm


def test_row_identity_needs_id_and_version() -> None:
    identity = row_identity("accountid")
    assert identity({"accountid": ACCOUNT_US1.upper(), "@odata.etag": 'W/"42"'}) == (
        ACCOUNT_US1,
        "42",
    )
    assert identity({"accountid": ACCOUNT_US1, "versionnumber": 7}) == (ACCOUNT_US1, "7")
    with pytest.raises(PermanentError, match="accountid"):
        identity({"name": "no id"})
