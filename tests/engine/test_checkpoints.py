"""Checkpoints and the change loader on SQLite and PostgreSQL.

The feed is an in-memory table with a change log and paged reads (links that encode where they
stand), so a test can expire its delta tokens, refuse a link or see which links were read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from d365sap.engine.change_loader import ChangeBatch, ChangeLoader, RebaselineCapExceededError
from d365sap.engine.checkpoints import Advance, CheckpointConflictError, CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.errors import DeltaTokenExpiredError, PermanentError, ValidationError

pytestmark = pytest.mark.anyio
NAME = "test:accounts"


@dataclass(frozen=True)
class Page:
    upserts: list[dict[str, Any]]
    removals: list[str]
    next_link: str | None
    delta_link: str | None


@dataclass
class FakeTable:
    """Rows with versions, a change log, and change tracking read in pages of ``page_size``."""

    page_size: int = 2
    rows: dict[str, int] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0
    expired_before: int = 0
    refused: set[str] = field(default_factory=set)
    links: list[str | None] = field(default_factory=list)

    def put(self, *ids: str) -> None:
        for row_id in ids:
            self.version += 1
            self.rows[row_id] = self.version
            self.log.append((self.version, row_id))

    def remove(self, row_id: str) -> None:
        self.version += 1
        del self.rows[row_id]
        self.log.append((self.version, row_id))

    def _row(self, row_id: str) -> dict[str, Any]:
        return {"id": row_id, "version": str(self.rows[row_id]), "name": f"row {row_id}"}

    def _items(self, since: int | None) -> list[str]:
        if since is None:
            return sorted(self.rows)
        changed = [row_id for version, row_id in self.log if version > since]
        return list(dict.fromkeys(reversed(changed)))[::-1]

    async def read(self, link: str | None) -> AsyncIterator[Page]:
        self.links.append(link)
        if link in self.refused:
            raise PermanentError(f"link {link} refused")
        if link is None:
            since, as_of, offset = None, self.version, 0
        else:
            kind, *numbers = link.split(":")
            if kind == "delta":
                if int(numbers[0]) < self.expired_before:
                    raise DeltaTokenExpiredError("delta token expired", status=400)
                since, as_of, offset = int(numbers[0]), self.version, 0
            else:
                since = None if numbers[0] == "full" else int(numbers[0])
                as_of, offset = int(numbers[1]), int(numbers[2])
        items = self._items(since)
        while True:
            chunk = items[offset : offset + self.page_size]
            offset += self.page_size
            more = offset < len(items)
            upserts = [self._row(i) for i in chunk if i in self.rows]
            removals = [i for i in chunk if i not in self.rows]
            start = "full" if since is None else str(since)
            next_link = f"page:{start}:{as_of}:{offset}" if more else None
            yield Page(upserts, removals, next_link, None if more else f"delta:{as_of}")
            if not more:
                return


def identity(row: Mapping[str, Any]) -> tuple[str, str]:
    return str(row["id"]), str(row["version"])


@dataclass
class Recorder:
    batches: list[ChangeBatch] = field(default_factory=list)
    fail_on: int | None = None

    async def __call__(self, batch: ChangeBatch) -> None:
        if self.fail_on == len(self.batches) + 1:
            self.fail_on = None
            raise RuntimeError("handler failed")
        self.batches.append(batch)

    def upserted(self) -> list[str]:
        return [str(row["id"]) for batch in self.batches for row in batch.upserts]

    def removed(self) -> list[str]:
        return [row_id for batch in self.batches for row_id in batch.removals]


def loader(store: MessageStore, table: FakeTable, cap: int = 100) -> ChangeLoader:
    return ChangeLoader(CheckpointStore(store), NAME, table, identity, rebaseline_cap=cap)


async def test_initial_pass_then_deltas(store: MessageStore) -> None:
    table = FakeTable()
    table.put("a", "b", "c", "d", "e")
    handler = Recorder()
    first = await loader(store, table).run(handler)
    saved = CheckpointStore(store).get(NAME)
    assert handler.upserted() == ["a", "b", "c", "d", "e"]
    assert (first.pages, first.rows, first.emitted, first.rebaselined) == (3, 5, 5, False)
    assert saved is not None
    assert (saved.phase, saved.next_link, saved.delta_link) == ("delta", None, "delta:5")
    assert (saved.emitted_total, saved.passes) == (5, 1)
    assert CheckpointStore(store).version_count(NAME) == 5
    table.put("b", "f")
    table.remove("c")
    delta = await loader(store, table).run(Recorder())
    handler = Recorder()
    table.put("a")
    await loader(store, table).run(handler)
    assert (delta.emitted, delta.removals, delta.phase) == (2, 1, "delta")
    assert handler.upserted() == ["a"] and handler.removed() == []
    assert table.links[-1] == "delta:8"
    assert CheckpointStore(store).known_versions(NAME, ["a", "c", "f"]) == {"a": "9", "f": "7"}
    quiet = await loader(store, table).run(Recorder())
    assert (quiet.pages, quiet.emitted) == (1, 0)


async def test_a_restart_resumes_from_the_last_saved_page(store: MessageStore) -> None:
    table = FakeTable()
    table.put("a", "b", "c", "d", "e")
    handler = Recorder(fail_on=2)
    with pytest.raises(RuntimeError):
        await loader(store, table).run(handler)
    stopped = CheckpointStore(store).get(NAME)
    assert stopped is not None
    assert (stopped.phase, stopped.next_link, stopped.pages) == ("initial", "page:full:5:2", 1)
    await loader(store, table).run(handler)
    assert table.links == [None, "page:full:5:2"]
    assert handler.upserted() == ["a", "b", "c", "d", "e"]


async def test_a_page_handed_on_but_not_saved_comes_again(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = FakeTable()
    table.put("a", "b", "c")
    checkpoints = CheckpointStore(store)
    real_save = checkpoints.save
    calls = {"n": 0}

    def crash_on_second_page(current: Any, advance: Advance) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # pass start, page 1, then page 2
            raise ConnectionError("store went away")
        return real_save(current, advance)

    monkeypatch.setattr(checkpoints, "save", crash_on_second_page)
    handler = Recorder()
    with pytest.raises(ConnectionError):
        await ChangeLoader(checkpoints, NAME, table, identity).run(handler)
    await ChangeLoader(checkpoints, NAME, table, identity).run(handler)
    assert handler.upserted() == ["a", "b", "c", "c"]  # at least once: the handler dedupes
    assert table.links == [None, "page:full:3:2"]


async def test_an_expired_delta_token_rebaselines_against_known_versions(
    store: MessageStore,
) -> None:
    table = FakeTable()
    table.put("a", "b", "c", "d", "e")
    await loader(store, table).run(Recorder())
    table.put("b", "x")
    table.remove("d")
    table.expired_before = table.version
    handler = Recorder()
    report = await loader(store, table).run(handler)
    saved = CheckpointStore(store).get(NAME)
    assert report.rebaselined
    assert table.links[-2:] == ["delta:5", None]
    assert sorted(handler.upserted()) == ["b", "x"]
    assert handler.removed() == ["d"]
    assert {batch.phase for batch in handler.batches} == {"rebaseline"}
    assert saved is not None
    assert (saved.phase, saved.delta_link, saved.emitted) == ("delta", "delta:8", 3)
    assert CheckpointStore(store).known_versions(NAME, ["d"]) == {}


async def test_a_rebaseline_over_its_cap_stops_with_an_alarm(store: MessageStore) -> None:
    table = FakeTable()
    table.put("a", "b", "c", "d", "e", "f")
    await loader(store, table).run(Recorder())
    table.put("a", "b", "c", "e")  # four rows changed while the token expired
    table.expired_before = table.version
    handler = Recorder()
    with pytest.raises(RebaselineCapExceededError) as capped:
        await loader(store, table, cap=3).run(handler)
    stopped = CheckpointStore(store).get(NAME)
    assert handler.upserted() == ["a", "b", "c"]  # two pages fit, the third would not
    assert (capped.value.emitted, capped.value.pending, capped.value.cap) == (3, 1, 3)
    assert stopped is not None and stopped.phase == "rebaseline"
    assert stopped.alarm is not None and "cap of 3" in stopped.alarm
    with pytest.raises(RebaselineCapExceededError):
        await loader(store, table, cap=3).run(handler)  # still held back
    report = await loader(store, table, cap=10).run(handler)
    done = CheckpointStore(store).get(NAME)
    assert handler.upserted() == ["a", "b", "c", "e"]
    assert table.links[-1] == "page:full:10:4"
    assert report.phase == "delta" and done is not None and done.alarm is None


async def test_a_refused_page_link_restarts_the_pass_without_repeats(
    store: MessageStore,
) -> None:
    table = FakeTable()
    table.put("a", "b", "c", "d")
    handler = Recorder(fail_on=2)
    with pytest.raises(RuntimeError):
        await loader(store, table).run(handler)
    table.refused.add("page:full:4:2")
    await loader(store, table).run(handler)
    assert table.links == [None, "page:full:4:2", None]
    assert handler.upserted() == ["a", "b", "c", "d"]


async def test_two_loaders_cannot_both_advance(store: MessageStore) -> None:
    checkpoints = CheckpointStore(store)
    opened = checkpoints.open(NAME)
    advance = Advance("initial", "next", None, "p", 1, 2, 2, 2, 0)
    moved = checkpoints.save(opened, advance)
    with pytest.raises(CheckpointConflictError):
        checkpoints.save(opened, advance)
    assert moved.revision == opened.revision + 1
    with pytest.raises(ValidationError) as phase:
        checkpoints.save(moved, Advance("sideways", None, None, None, 0, 0, 0, 0, 0))
    assert phase.value.field == "phase"
    assert [c.name for c in checkpoints.all()] == [NAME]


async def test_reset_starts_over(store: MessageStore) -> None:
    table = FakeTable()
    table.put("a", "b")
    await loader(store, table).run(Recorder())
    assert CheckpointStore(store).reset(NAME)
    handler = Recorder()
    await loader(store, table).run(handler)
    assert handler.upserted() == ["a", "b"]
    assert table.links[-1] is None
    assert not CheckpointStore(store).reset("never-saved")
