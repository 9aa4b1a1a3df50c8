"""Keeping the job table's planner statistics fresh (``engine.queue_statistics``)."""

from __future__ import annotations

import time

from sqlalchemy import text

from d365sap.engine.procrastinate_jobs import defer_in_session
from d365sap.engine.queue_statistics import Drift, refresh_if_stale
from d365sap.engine.runtime import JobRequest
from d365sap.engine.store import MessageStore


def test_drift_is_a_base_plus_a_share_of_the_size() -> None:
    drift = Drift(base=100, share=0.2)
    assert not drift.stale(100, 0)
    assert drift.stale(101, 0)
    assert not drift.stale(300, 1000)
    assert drift.stale(301, 1000)


def analysed(store: MessageStore) -> tuple[int, float]:
    with store.read() as conn:
        row = conn.execute(
            text(
                "SELECT analyze_count + autoanalyze_count, n_mod_since_analyze "
                "FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'"
            )
        ).one()
    return int(row[0]), float(row[1])


def test_a_grown_job_table_is_analysed_once(store: MessageStore) -> None:
    with store.fast() as session:
        for n in range(150):
            defer_in_session(session, JobRequest(f"m{n}", "q", f"K{n}", new=True))
    # PostgreSQL publishes a backend's table counters within a second or so.
    deadline = time.monotonic() + 5
    while analysed(store)[1] < 150 and time.monotonic() < deadline:
        time.sleep(0.1)
    before, changed = analysed(store)
    assert changed >= 150
    with store.fast() as session:
        assert refresh_if_stale(session)
    after, changed = analysed(store)
    assert after >= before + 1
    assert changed == 0
    with store.fast() as session:
        assert not refresh_if_stale(session)  # nothing changed since


def test_a_small_change_is_left_to_autovacuum(store: MessageStore) -> None:
    with store.fast() as session:
        for n in range(20):
            defer_in_session(session, JobRequest(f"m{n}", "q", f"K{n}", new=True))
    time.sleep(1.0)
    with store.fast() as session:
        assert not refresh_if_stale(session)
