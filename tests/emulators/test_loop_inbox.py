"""The hand-off of emulator work from any thread to tasks on the app's loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from d365sap.emulators.loop_inbox import LoopInbox

pytestmark = pytest.mark.anyio


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout)


async def test_items_put_before_the_start_wait_and_run_in_order() -> None:
    seen: list[int] = []

    async def handle(item: int) -> None:
        seen.append(item)

    inbox: LoopInbox[int] = LoopInbox(handle, name="test")
    for item in (1, 2, 3):
        inbox.put(item)
    assert seen == [] and not inbox.started and inbox.loop is None
    await inbox.start()
    assert inbox.started and inbox.loop is asyncio.get_running_loop()
    inbox.put(4)
    await _until(lambda: len(seen) == 4)
    assert seen == [1, 2, 3, 4]
    await inbox.stop()
    inbox.put(5)  # stopped: kept for the next start
    await asyncio.sleep(0.02)
    assert seen == [1, 2, 3, 4]
    await inbox.start()
    await _until(lambda: len(seen) == 5)
    await inbox.stop()


async def test_items_put_from_other_threads_reach_the_loop() -> None:
    seen: list[tuple[int, int]] = []
    loop_thread = threading.get_ident()

    async def handle(item: int) -> None:
        seen.append((item, threading.get_ident()))

    inbox: LoopInbox[int] = LoopInbox(handle, name="test", workers=3)
    await inbox.start()
    threads = [threading.Thread(target=inbox.put, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await _until(lambda: len(seen) == 20)
    assert sorted(item for item, _ in seen) == list(range(20))
    assert {thread for _, thread in seen} == {loop_thread}
    await inbox.stop()


async def test_a_failing_item_is_reported_and_the_worker_goes_on() -> None:
    seen: list[int] = []
    failed: list[int] = []

    async def handle(item: int) -> None:
        if item == 2:
            raise RuntimeError("broken")
        seen.append(item)

    inbox: LoopInbox[int] = LoopInbox(handle, name="test", on_error=failed.append)
    await inbox.start()
    for item in (1, 2, 3):
        inbox.put(item)
    await _until(lambda: len(seen) == 2)
    assert seen == [1, 3] and failed == [2]
    inbox.clear()
    await inbox.stop()


async def test_clear_drops_the_backlog() -> None:
    seen: list[int] = []

    async def handle(item: int) -> None:
        seen.append(item)

    inbox: LoopInbox[int] = LoopInbox(handle, name="test")
    inbox.put(1)
    inbox.clear()
    await inbox.start()
    inbox.put(2)
    await _until(lambda: seen == [2])
    await inbox.stop()
