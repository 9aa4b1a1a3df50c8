"""The embedded job table on SQLite and PostgreSQL: heads of keys, claiming, removal, repair."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from d365sap.engine.db import alembic_config, make_engine
from d365sap.engine.queue import JobQueue, add_job, remove_job
from d365sap.engine.runtime import JobRequest
from d365sap.engine.store import Arrival, MessageStore
from d365sap.engine.tables import JobRow


class TableEnqueuer:
    def enqueue(self, session: object, job: JobRequest) -> None:
        add_job(session, job)  # type: ignore[arg-type]


def queue_message(store: MessageStore, key: str, n: int) -> str:
    arrival = Arrival(
        flow="customer",
        payload=f"<m{key}{n}/>".encode(),
        content_type="application/xml",
        correlation_id="c",
        source_id=f"{key}-{n}",
        route="s4hc",
        business_key=key,
        queue="s4hc",
    )
    message, _ = store.accept(arrival, TableEnqueuer())
    return message.id


def jobs_queue(store: MessageStore) -> JobQueue:
    return JobQueue(store.sessions, worker_id="test", lease=60, write=store.fast)


def claimable(store: MessageStore) -> list[str]:
    return [message_id for _, message_id, _ in jobs_queue(store).claim({"s4hc": 100}).jobs]


def blocked_flags(store: MessageStore) -> dict[str, bool]:
    with store.sessions() as session:
        rows = session.execute(select(JobRow.message_id, JobRow.blocked)).all()
    return {str(message_id): bool(blocked) for message_id, blocked in rows}


def test_only_the_oldest_job_of_a_key_is_unblocked(store: MessageStore) -> None:
    first, second, third = (queue_message(store, "K1", n) for n in range(3))
    other = queue_message(store, "K2", 0)

    assert blocked_flags(store) == {first: False, second: True, third: True, other: False}
    assert claimable(store) == [first, other]


def test_removing_the_head_lets_the_next_job_of_its_key_run(store: MessageStore) -> None:
    first, second, third = (queue_message(store, "K1", n) for n in range(3))
    assert claimable(store) == [first]

    with store.fast() as session:
        remove_job(session, first)

    assert blocked_flags(store) == {second: False, third: True}
    assert claimable(store) == [second]


def test_removing_a_waiting_job_leaves_the_head_alone(store: MessageStore) -> None:
    first, second, third = (queue_message(store, "K1", n) for n in range(3))

    with store.fast() as session:
        remove_job(session, second)  # an operator discarded a message still waiting its turn

    assert blocked_flags(store) == {first: False, third: True}
    assert claimable(store) == [first]


def test_a_job_added_after_its_key_emptied_runs_at_once(store: MessageStore) -> None:
    first = queue_message(store, "K1", 0)
    with store.fast() as session:
        remove_job(session, first)

    later = queue_message(store, "K1", 1)

    assert blocked_flags(store) == {later: False}
    assert claimable(store) == [later]


def test_a_head_wrongly_left_blocked_is_repaired_by_recovery(store: MessageStore) -> None:
    first, second = (queue_message(store, "K1", n) for n in range(2))
    with store.sessions.begin() as session:
        session.execute(update(JobRow).values(blocked=True))
    assert claimable(store) == []

    jobs_queue(store).recover()

    assert blocked_flags(store) == {first: False, second: True}
    assert claimable(store) == [first]


def test_a_job_wrongly_unblocked_still_waits_for_the_earlier_one(store: MessageStore) -> None:
    first, _second = (queue_message(store, "K1", n) for n in range(2))
    with store.sessions.begin() as session:
        session.execute(update(JobRow).values(blocked=False))

    assert claimable(store) == [first]


def test_a_claim_says_when_due_jobs_wait_for_a_free_slot(store: MessageStore) -> None:
    first, second, third = (queue_message(store, key, 0) for key in ("K1", "K2", "K3"))

    claim = jobs_queue(store).claim({"s4hc": 2})
    assert [message_id for _, message_id, _ in claim.jobs] == [first, second]
    assert claim.due_left

    rest = jobs_queue(store).claim({"s4hc": 2})
    assert [message_id for _, message_id, _ in rest.jobs] == [third]
    assert not rest.due_left
    assert jobs_queue(store).claim({"s4hc": 2}).jobs == []


def test_a_claim_without_a_free_slot_takes_nothing_and_says_jobs_wait(store: MessageStore) -> None:
    queue_message(store, "K1", 0)

    claim = jobs_queue(store).claim({"s4hc": 0})

    assert claim.jobs == [] and claim.due_left
    assert claimable(store) != []  # the job is still there for the next claim


def test_the_upgrade_marks_jobs_queued_before_it(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0003")
    with engine.begin() as connection:
        for n, key in enumerate(["K1", "K1", "K2", "K1"]):
            connection.exec_driver_sql(
                "INSERT INTO messages (id, flow, seq, payload_hash, queue, lock_key, status,"
                " content_type, payload, version, correlation_id, attempts, created_at,"
                " updated_at) VALUES (?, 'customer', ?, 'h', 's4hc', ?, 'queued',"
                " 'application/xml', x'00', 1, 'c', 0, '2026-01-01', '2026-01-01')",
                (f"m{n}", n, key),
            )
            connection.exec_driver_sql(
                "INSERT INTO jobs (message_id, queue, lock_key, status, run_at, created_at)"
                " VALUES (?, 's4hc', ?, 'todo', '2026-01-01', '2026-01-01')",
                (f"m{n}", key),
            )

    command.upgrade(config, "head")

    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT message_id, blocked FROM jobs ORDER BY id").all()
    engine.dispose()
    assert [(m, bool(b)) for m, b in rows] == [
        ("m0", False),
        ("m1", True),
        ("m2", False),
        ("m3", True),
    ]
