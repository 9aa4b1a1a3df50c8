"""Service protection limits on their own: each limit, Retry-After, the sliding window, users."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.protection import (
    BURST_REMAINING,
    TIME_REMAINING,
    Admission,
    ServiceProtection,
    ServiceProtectionSettings,
    ThrottledError,
    limit_message,
    limits_router,
)

ALICE = Caller(user_id="alice", client_id="app-1")
BOB = Caller(user_id="bob", client_id="app-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def protection(clock: Clock, **limits: Any) -> ServiceProtection:
    return ServiceProtection(ServiceProtectionSettings(**limits), clock=clock)


def run(limiter: ServiceProtection, caller: Caller, clock: Clock, seconds: float = 0.0) -> None:
    """One request of ``seconds`` execution time."""
    admission = limiter.enter(caller)
    clock.advance(seconds)
    limiter.leave(admission)


def body(error: ThrottledError) -> dict[str, Any]:
    response = error.response()
    assert response.status == 429
    assert response.headers["retry-after"] == str(error.retry_after)
    document: dict[str, Any] = json.loads(response.body)
    return document


def test_documented_messages_with_default_limits() -> None:
    settings = ServiceProtectionSettings()
    assert limit_message("requests", settings) == (
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
    )
    assert limit_message("execution_time", settings) == (
        "Combined execution time of incoming requests exceeded limit of 1,200,000  milliseconds "
        "over time window of 300 seconds. Decrease number of concurrent requests or reduce the "
        "duration of requests and try again later."
    )
    assert limit_message("concurrency", settings) == (
        "Number of concurrent requests exceeded the limit of 52."
    )


def test_request_count_limit_and_retry_after(clock: Clock) -> None:
    limiter = protection(clock, max_requests=3, window_seconds=10)
    for _ in range(3):
        run(limiter, ALICE, clock)
        clock.advance(1)  # requests at 1000, 1001, 1002; now 1003
    with pytest.raises(ThrottledError) as excinfo:
        limiter.enter(ALICE)
    error = excinfo.value
    assert (error.kind, error.code, error.retry_after) == ("requests", "0x80072322", 7)
    assert body(error) == {
        "error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 3 over time window of 10 seconds.",
        }
    }
    clock.advance(6.5)  # 1009.5: the first request is still inside the window
    with pytest.raises(ThrottledError) as again:
        limiter.enter(ALICE)
    assert again.value.retry_after == 1
    clock.advance(0.5)  # 1010: the first request left the window
    run(limiter, ALICE, clock)
    with pytest.raises(ThrottledError) as third:
        limiter.enter(ALICE)
    assert third.value.retry_after == 1  # the request of 1001 leaves at 1011


def test_refused_requests_are_not_counted(clock: Clock) -> None:
    limiter = protection(clock, max_requests=1, window_seconds=5)
    run(limiter, ALICE, clock)
    for _ in range(5):
        with pytest.raises(ThrottledError):
            limiter.enter(ALICE)
    usage = limiter.usage()["users"]["alice"]
    assert usage["requests"] == 1
    assert usage["throttled"] == {"requests": 5, "execution_time": 0, "concurrency": 0}
    clock.advance(5)
    run(limiter, ALICE, clock)


def test_execution_time_limit_and_retry_after(clock: Clock) -> None:
    limiter = protection(clock, max_execution_seconds=3, window_seconds=20)
    run(limiter, ALICE, clock, 1.0)  # ends 1001
    clock.advance(1)
    run(limiter, ALICE, clock, 1.5)  # ends 1003.5: 2.5 s used, still admitted
    run(limiter, ALICE, clock, 1.0)  # ends 1004.5: 3.5 s, the window is full now
    with pytest.raises(ThrottledError) as excinfo:
        limiter.enter(ALICE)
    error = excinfo.value
    assert (error.kind, error.code) == ("execution_time", "0x80072321")
    # dropping the first request (ended 1001) brings the total to 2.5 s < 3 s: free at 1021
    assert error.retry_after == math_ceil(1021 - 1004.5)
    assert body(error)["error"]["message"].startswith(
        "Combined execution time of incoming requests exceeded limit of 3,000  milliseconds over "
        "time window of 20 seconds."
    )
    clock.advance(16.5)
    run(limiter, ALICE, clock)
    assert limiter.usage()["users"]["alice"]["execution_seconds"] == pytest.approx(2.5)


def math_ceil(value: float) -> int:
    return -int(-value // 1)


def test_concurrency_limit_is_immediate_and_frees_on_leave(clock: Clock) -> None:
    limiter = protection(clock, max_concurrent=2)
    first = limiter.enter(ALICE)
    second = limiter.enter(ALICE)
    with pytest.raises(ThrottledError) as excinfo:
        limiter.enter(ALICE)
    error = excinfo.value
    assert (error.kind, error.code, error.retry_after) == ("concurrency", "0x80072326", 1)
    assert (
        body(error)["error"]["message"] == "Number of concurrent requests exceeded the limit of 2."
    )
    limiter.enter(BOB)  # another user is not affected
    limiter.leave(first)
    limiter.leave(first)  # leaving twice frees one slot only
    third = limiter.enter(ALICE)
    with pytest.raises(ThrottledError):
        limiter.enter(ALICE)
    limiter.leave(second)
    limiter.leave(third)
    assert limiter.usage()["users"]["alice"]["concurrent"] == 0


def test_users_are_limited_independently(clock: Clock) -> None:
    limiter = protection(clock, max_requests=2, window_seconds=60)
    run(limiter, ALICE, clock)
    run(limiter, ALICE, clock)
    with pytest.raises(ThrottledError):
        limiter.enter(ALICE)
    run(limiter, BOB, clock)
    run(limiter, BOB, clock)
    users = limiter.usage()["users"]
    assert users["alice"]["requests"] == users["bob"]["requests"] == 2
    assert users["bob"]["throttled"]["requests"] == 0


def test_admission_headers_show_what_is_left(clock: Clock) -> None:
    limiter = protection(clock, max_requests=10, max_execution_seconds=1200)
    run(limiter, ALICE, clock, 0.54)
    admission = limiter.enter(ALICE)
    assert admission.headers() == {BURST_REMAINING: "8", TIME_REMAINING: "1,199.46"}
    limiter.leave(admission)


def test_disabled_protection_counts_but_never_refuses(clock: Clock) -> None:
    limiter = protection(clock, enabled=False, max_requests=1, max_concurrent=1)
    held = [limiter.enter(ALICE) for _ in range(3)]
    assert limiter.usage()["users"]["alice"]["concurrent"] == 3
    for admission in held:
        limiter.leave(admission)


def test_changed_limits_judge_the_recorded_usage(clock: Clock) -> None:
    limiter = protection(clock, max_requests=5)
    for _ in range(3):
        run(limiter, ALICE, clock)
    limiter.replace(ServiceProtectionSettings(max_requests=3))
    with pytest.raises(ThrottledError):
        limiter.enter(ALICE)
    limiter.clear()
    run(limiter, ALICE, clock)


def test_admit_context_managers_release_on_error(clock: Clock) -> None:
    limiter = protection(clock, max_concurrent=1)

    async def failing() -> None:
        async with limiter.admit(ALICE) as admission:
            assert isinstance(admission, Admission)
            clock.advance(2)
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        asyncio.run(failing())
    with pytest.raises(RuntimeError), limiter.admitted(ALICE):
        raise RuntimeError("again")
    usage = limiter.usage()["users"]["alice"]
    assert usage["concurrent"] == 0
    assert usage["execution_seconds"] == pytest.approx(2.0)


def test_limits_admin_routes(clock: Clock) -> None:
    limiter = protection(clock, max_requests=4)
    run(limiter, ALICE, clock)
    app = FastAPI()
    app.include_router(limits_router(limiter))
    with TestClient(app) as client:
        current = client.get("/emulator/limits").json()
        assert current["settings"]["max_requests"] == 4
        assert current["users"]["alice"]["requests"] == 1
        changed = client.put("/emulator/limits", json={"max_requests": 1, "window_seconds": 2})
        assert changed.status_code == 200
        assert changed.json()["settings"]["window_seconds"] == 2
        with pytest.raises(ThrottledError):
            limiter.enter(ALICE)
        bad = client.put("/emulator/limits", json={"max_concurrent": 0})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "max_concurrent"]
        unknown = client.put("/emulator/limits", json={"max_request": 3})
        assert unknown.status_code == 422
        assert limiter.settings.max_requests == 1
        cleared = client.delete("/emulator/limits").json()
        assert cleared["users"]["alice"]["requests"] == 0
