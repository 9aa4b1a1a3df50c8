"""Group commit: what arrives together is written together, each caller answered after its write."""

from __future__ import annotations

import asyncio

import pytest

from d365sap.engine.batching import Batcher

pytestmark = pytest.mark.anyio


class Recorder:
    """A write function that records its batches and can be told to fail or stall."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail_on: int | None = None
        self.gate: asyncio.Event | None = None

    async def write(self, items: list[int]) -> list[str]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_on is not None and self.fail_on in items:
            raise OSError(f"disk full while writing {self.fail_on}")
        return [f"stored {item}" for item in items]


async def test_items_submitted_in_the_same_turn_share_one_write() -> None:
    recorder = Recorder()
    batcher: Batcher[int, str] = Batcher(recorder.write)

    results = await asyncio.gather(*(batcher.submit(n) for n in range(10)))

    assert results == [f"stored {n}" for n in range(10)]
    assert recorder.batches == [list(range(10))]


async def test_items_arriving_during_a_write_go_in_the_next_one() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher: Batcher[int, str] = Batcher(recorder.write)

    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)  # the first batch is being written and stalls
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert recorder.batches == [[1]]
    assert not first.done()

    recorder.gate.set()
    assert await first == "stored 1"
    assert [await task for task in later] == ["stored 2", "stored 3", "stored 4"]
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_a_caller_is_answered_only_after_its_batch_is_written() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher: Batcher[int, str] = Batcher(recorder.write)

    task = asyncio.create_task(batcher.submit(7))
    await asyncio.sleep(0.05)
    assert not task.done()
    recorder.gate.set()
    assert await task == "stored 7"


async def test_a_failed_write_fails_every_caller_of_that_batch_only() -> None:
    recorder = Recorder()
    recorder.fail_on = 2
    batcher: Batcher[int, str] = Batcher(recorder.write)

    outcomes = await asyncio.gather(*(batcher.submit(n) for n in (1, 2, 3)), return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes)
    assert "disk full while writing 2" in str(outcomes[0])

    recorder.fail_on = None
    assert await batcher.submit(4) == "stored 4"  # the batcher goes on after a failure


async def test_batches_are_capped_at_max_size() -> None:
    recorder = Recorder()
    batcher: Batcher[int, str] = Batcher(recorder.write, max_size=4)

    await asyncio.gather(*(batcher.submit(n) for n in range(10)))

    assert [len(batch) for batch in recorder.batches] == [4, 4, 2]
    assert [n for batch in recorder.batches for n in batch] == list(range(10))


async def test_a_caller_that_gives_up_does_not_unwrite_its_item() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher: Batcher[int, str] = Batcher(recorder.write)

    impatient = asyncio.create_task(batcher.submit(1))
    patient = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)
    impatient.cancel()
    recorder.gate.set()

    assert await patient == "stored 2"
    assert recorder.batches == [[1, 2]]  # the cancelled caller's item was written all the same


async def test_a_write_returning_the_wrong_number_of_results_fails_the_batch() -> None:
    async def short(items: list[int]) -> list[str]:
        return ["only one"]

    batcher: Batcher[int, str] = Batcher(short)
    outcomes = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_with_concurrency_a_new_batch_starts_while_one_is_being_written() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    batcher: Batcher[int, str] = Batcher(recorder.write, concurrency=2)

    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    second = [asyncio.create_task(batcher.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0.01)
    third = asyncio.create_task(batcher.submit(4))
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1], [2, 3]]  # two writes at once, the third item waits

    recorder.gate.set()
    assert [await first, *[await t for t in second], await third] == [
        f"stored {n}" for n in (1, 2, 3, 4)
    ]
    assert recorder.batches == [[1], [2, 3], [4]]


def test_max_size_must_be_positive() -> None:
    async def write(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="max_size"):
        Batcher(write, max_size=0)


def test_concurrency_must_be_positive() -> None:
    async def write(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="concurrency"):
        Batcher(write, concurrency=0)
