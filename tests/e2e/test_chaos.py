"""Nothing lost, nothing applied twice: the service under failures, as real processes.

Each test runs ``d365sap emulators``, ``d365sap serve`` (and for procrastinate ``d365sap worker``)
as separate processes on loopback, pushes hundreds of versioned customer messages with
``Prefer: respond-async`` from concurrent senders, breaks something on the way (injected faults on
every business endpoint of both back ends, SIGKILL of the service or of a worker, both back ends
away for seconds, writes reaching the back ends after the service gave up on them) and checks the
same invariants afterwards (``support.chaos.check_invariants``): every accepted message is stored
once and final (done, or superseded by a newer version of its record), S/4 holds every sales area
once with the latest values, was sent at most one successful create per sales area and never an
older version after a newer one, ERP posted exactly one IDoc per message (and each version's
content once, in order) and its customer master holds the latest values.

The tests print one ``[chaos]`` line each with timings and counts (``pytest -s``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from d365sap.connectors.idoc import stable_message_id
from d365sap.engine.views import aware
from support.chaos import (
    CALLER,
    ERP_FAULTS,
    FAST_RETRIES,
    INBOUND,
    S4_FAULTS,
    S4_SEEDED,
    Deployment,
    Kind,
    Load,
    Record,
    StoreReader,
    build_workload,
    check_invariants,
    injected,
    pg_available,
    pg_database,
    wait_settled,
)

pytestmark = pytest.mark.e2e

MESSAGES = 500
EMBEDDED: dict[str, Any] = {
    "kind": "embedded",
    "concurrency": {"s4hc": 8, "erp": 8, "default": 2},
    "poll_interval_seconds": 0.2,
    "lease_seconds": 10.0,
    "retry": FAST_RETRIES,
}

DeployFactory = Callable[..., Deployment]


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[DeployFactory]:
    """Builds deployments in ``tmp_path``; every process is stopped at the end of the test."""
    made: list[Deployment] = []

    def make(**options: Any) -> Deployment:
        options.setdefault("store_url", f"sqlite:///{tmp_path / 'store.db'}")
        deployment = Deployment(tmp_path, **options)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


def resend(
    deployment: Deployment, records: list[Record], load: Load, count: int
) -> list[tuple[bool, bool]]:
    """Post ``count`` answered versions again: (answered as duplicate, with the first id)."""
    versions = [v for r in records for v in r.versions][::7][:count]
    outcomes = []
    with httpx2.Client(timeout=15.0) as client:
        for version in versions:
            response = client.post(
                deployment.service_url + INBOUND,
                content=version.payload,
                headers={"Content-Type": "application/xml", "X-Message-Id": version.source_id},
                auth=CALLER,
            )
            assert response.is_success, response.text
            body = response.json()
            first = load.answers[version.source_id].message_id
            outcomes.append((bool(body["duplicate"]), body["message_id"] == first))
    return outcomes


def report(name: str, **facts: Any) -> None:
    """One line per test with its timings and counts (shown with ``-s`` or on failure)."""
    print(f"\n[chaos] {name}: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


@pytest.mark.timeout(200)
def test_faults_on_every_backend_endpoint_lose_and_duplicate_nothing(
    deploy: DeployFactory,
) -> None:
    deployment = deploy(runtime=EMBEDDED, s4_faults=S4_FAULTS, erp_faults=ERP_FAULTS)
    deployment.start_emulators()
    deployment.start_service()
    records = build_workload(MESSAGES)
    reader = StoreReader(deployment.store_url)
    try:
        started = time.monotonic()
        load = Load(deployment.service_url, records, senders=4).start()
        load.join()
        sent = time.monotonic() - started
        settled = wait_settled(reader, MESSAGES, timeout=150, deployment=deployment)
        findings = check_invariants(deployment, records, load, reader)
    finally:
        reader.close()
    counters = injected(deployment)
    report(
        "faults",
        sent_s=round(sent, 1),
        settle_s=round(settled, 1),
        messages=findings.messages,
        superseded=findings.superseded,
        attempts=findings.attempts,
        retried=findings.retried_messages,
        idocs=findings.idocs,
        s4_posts=findings.s4_posts,
        faults=counters,
    )
    # Every kind of fault was really injected, or the test proves less than it claims.
    for kind in ("error", "retry_after", "timeout", "drop", "drop_after_commit"):
        assert counters["s4"].get(kind, 0) > 0, (kind, counters)
        assert counters["erp"].get(kind, 0) > 0, (kind, counters)
    for kind in ("csrf_expiry", "etag_change"):
        assert counters["s4"].get(kind, 0) > 0, (kind, counters)
    assert counters["erp"].get("lock", 0) > 0, counters
    assert findings.retried_messages >= 50
    assert findings.done + findings.superseded == MESSAGES


@pytest.mark.timeout(200)
def test_service_killed_mid_load_loses_and_duplicates_nothing(deploy: DeployFactory) -> None:
    deployment = deploy(runtime=EMBEDDED, s4_faults=S4_FAULTS, erp_faults=ERP_FAULTS)
    deployment.start_emulators()
    first = deployment.start_service()
    records = build_workload(MESSAGES, seed=11)
    reader = StoreReader(deployment.store_url)
    try:
        load = Load(deployment.service_url, records, senders=4).start()
        load.wait_accepted(MESSAGES * 4 // 10)
        first.kill9()
        killed_at = time.monotonic()
        accepted_at_kill = len(load.answers)
        # What the dead process was doing: attempts begun and never recorded.
        cut_off = {m.id: m.attempts for m in reader.messages() if m.status == "processing"}
        time.sleep(1.0)  # senders meet a closed port meanwhile
        deployment.start_service()
        down_s = time.monotonic() - killed_at
        load.join()
        settled = wait_settled(reader, MESSAGES, timeout=150, deployment=deployment)
        # What a sender whose answer was lost does: the same X-Message-Id again.
        resent = resend(deployment, records, load, count=20)
        findings = check_invariants(deployment, records, load, reader)
        after = {m.id: m for m in reader.messages()}
    finally:
        reader.close()
    assert all(duplicate for duplicate, _ in resent), resent
    assert all(same_id for _, same_id in resent), resent
    report(
        "kill -9 serve",
        accepted_at_kill=accepted_at_kill,
        cut_off=len(cut_off),
        down_s=round(down_s, 1),
        unanswered_tries=load.unanswered_tries,
        duplicates_answered=sum(a.duplicate for a in load.answers.values()),
        settle_s=round(settled, 1),
        attempts=findings.attempts,
        idocs=findings.idocs,
    )
    assert cut_off, "the kill found no message in processing: it proved nothing"
    for message_id, attempts in cut_off.items():
        # the cut-off attempt was begun again by the new process and recorded this time
        assert after[message_id].attempts > attempts, after[message_id]
    assert load.unanswered_tries > 0, "no sender met the dead service"
    assert findings.done + findings.superseded == MESSAGES


PROCRASTINATE: dict[str, Any] = {
    "kind": "procrastinate",
    "concurrency": {"s4hc": 8, "erp": 8, "default": 2},
    "poll_interval_seconds": 0.2,
    "heartbeat_seconds": 0.5,
    "stalled_seconds": 3.0,
    "shutdown_grace_seconds": 2.0,
    "retry": FAST_RETRIES,
}


def _workers_registered(store_url: str) -> set[int]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar():
                return {
                    int(r[0])
                    for r in connection.execute(text("SELECT id FROM procrastinate_workers"))
                }
            return set()
    finally:
        engine.dispose()


def _running_jobs_of(store_url: str, worker_ids: set[int]) -> dict[str, int]:
    """Message id -> job id of the jobs the given procrastinate workers are running."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT args->>'message_id', id FROM procrastinate_jobs "
                    "WHERE status = 'doing' AND worker_id = ANY(:ids)"
                ),
                {"ids": sorted(worker_ids)},
            ).all()
        return {str(message_id): int(job_id) for message_id, job_id in rows}
    finally:
        engine.dispose()


def _await_workers(deployment: Deployment, count: int, known: set[int]) -> set[int]:
    """Wait until ``count`` procrastinate workers beyond ``known`` registered; their ids."""
    deadline = time.monotonic() + 60
    while True:
        fresh = _workers_registered(deployment.store_url) - known
        if len(fresh) >= count:
            return fresh
        for worker in deployment.workers:
            assert worker.alive, worker.log_tail()
        assert time.monotonic() < deadline, deployment.logs()
        time.sleep(0.1)


@pytest.mark.timeout(200)
def test_worker_killed_mid_load_loses_and_duplicates_nothing(deploy: DeployFactory) -> None:
    if not pg_available():
        pytest.skip("PostgreSQL not reachable")
    queues = len(PROCRASTINATE["concurrency"])
    with pg_database() as store_url:
        deployment = deploy(
            store_url=store_url,
            runtime=PROCRASTINATE,
            s4_faults=S4_FAULTS,
            erp_faults=ERP_FAULTS,
        )
        deployment.start_emulators()
        deployment.start_service()  # migrates the new database, installs procrastinate
        victim = deployment.start_worker()
        victim_ids = _await_workers(deployment, queues, set())
        deployment.start_worker()
        _await_workers(deployment, queues, victim_ids)
        records = build_workload(MESSAGES, seed=13)
        reader = StoreReader(store_url)
        try:
            load = Load(deployment.service_url, records, senders=4).start()
            load.wait_accepted(MESSAGES * 3 // 10)
            deadline = time.monotonic() + 30
            while not (running := _running_jobs_of(store_url, victim_ids)):
                assert time.monotonic() < deadline, "the victim never ran a job"
                time.sleep(0.02)
            victim.kill9()
            killed_at = time.monotonic()
            states = {m.id: m for m in reader.messages()}
            cut_off = {
                mid: states[mid].attempts for mid in running if states[mid].status == "processing"
            }
            replacement = deployment.start_worker()
            load.join()
            settled = wait_settled(reader, MESSAGES, timeout=150, deployment=deployment)
            recovered_s = time.monotonic() - killed_at
            findings = check_invariants(deployment, records, load, reader)
            after = {m.id: m for m in reader.messages()}
        finally:
            reader.close()
            deployment.close()  # before the database is dropped
        report(
            "kill -9 worker",
            running_at_kill=len(running),
            cut_off=len(cut_off),
            settle_s=round(settled, 1),
            since_kill_s=round(recovered_s, 1),
            attempts=findings.attempts,
            idocs=findings.idocs,
        )
        assert cut_off, "the kill cut off no attempt: it proved nothing"
        for message_id, attempts in cut_off.items():
            assert after[message_id].attempts > attempts, after[message_id]
        assert replacement.popen.returncode == 0, replacement.log_tail()
        assert findings.done + findings.superseded == MESSAGES


BACKEND_DOWN_SECONDS = 5.0


@pytest.mark.timeout(150)
def test_both_backends_away_for_seconds_then_everything_catches_up(
    deploy: DeployFactory,
) -> None:
    # ERP behind a TCP gate: closed, its port refuses connections and open ones are reset,
    # without losing the emulator's IDocs and customers. S/4 answers 503 to every request.
    deployment = deploy(runtime=EMBEDDED, gates=True)
    deployment.start_emulators()
    deployment.start_service()
    assert deployment.erp_gate is not None
    total = 300
    records = build_workload(total, seed=17)
    reader = StoreReader(deployment.store_url)
    try:
        load = Load(deployment.service_url, records, senders=4, pace=0.05).start()
        load.wait_accepted(total // 5)
        deployment.erp_gate.close()
        deployment.set_faults("s4", {"error_rate": {"503": 1.0}})
        down_at = time.monotonic()
        time.sleep(BACKEND_DOWN_SECONDS)
        backlog = reader.counts()
        deployment.erp_gate.open()
        deployment.set_faults("s4", None)
        up_at = time.monotonic()
        load.join()
        catch_up = wait_settled(reader, total, timeout=60, deployment=deployment)
        findings = check_invariants(deployment, records, load, reader)
        failed_steps = reader.failed_steps()
    finally:
        reader.close()
    during = [a for a in load.answers.values() if down_at <= a.at <= up_at]
    report(
        "backends away",
        accepted_while_down=len(during),
        backlog_at_recovery=backlog,
        catch_up_s=round(catch_up, 1),
        failed_steps=dict(failed_steps),
        attempts=findings.attempts,
    )
    # Messages kept arriving and were accepted (202) while neither back end answered.
    assert len(during) >= 20
    assert all(a.status == 202 for a in during)
    assert sum(n for s, n in backlog.items() if s in ("queued", "retrying", "processing")) > 0
    # Both outages were felt: S/4 checks answered 503, IDoc posts could not connect.
    assert failed_steps["s4.check_sales_area"] > 0, failed_steps
    assert failed_steps["erp.send_idoc"] > 0, failed_steps
    assert catch_up < 30
    assert findings.done + findings.superseded == total


SLOW_WRITES_SECONDS = 3.0


@pytest.mark.timeout(150)
def test_writes_landing_after_the_service_gave_up_apply_once(deploy: DeployFactory) -> None:
    # Both back ends behind TCP gates. For a few seconds every write (S/4 POST/PATCH, IDoc POST)
    # reaches its back end 2.5 s late, whole, although the service gave up after 2 s: the back
    # end carries out requests the service counts as timed out, sometimes after the retry did
    # (an existing sales area, a moved ETag, an IDoc message id seen before).
    deployment = deploy(runtime=EMBEDDED, gates=True)
    deployment.start_emulators()
    deployment.start_service()
    assert deployment.s4_gate is not None and deployment.erp_gate is not None
    total = 300
    records = build_workload(total, seed=19)
    reader = StoreReader(deployment.store_url)
    try:
        load = Load(deployment.service_url, records, senders=4, pace=0.02).start()
        load.wait_accepted(total // 5)
        deployment.s4_gate.delay = deployment.erp_gate.delay = 2.5
        time.sleep(SLOW_WRITES_SECONDS)
        deployment.s4_gate.delay = deployment.erp_gate.delay = 0.0
        load.join()
        settled = wait_settled(reader, total, timeout=90, deployment=deployment)
        findings = check_invariants(deployment, records, load, reader)
        sends = reader.steps("erp.send_idoc")
    finally:
        reader.close()
    idocs = httpx2.get(f"{deployment.erp_url}/emulator/idocs", timeout=30).json()["idocs"]
    journal = httpx2.get(f"{deployment.s4_url}/emulator/requests", timeout=30).json()["requests"]
    stale = Counter((e["method"], e["status"]) for e in journal if e["status"] in (400, 412))
    # IDocs that ERP received after the service had given up on them and begun the attempt
    # that finally got their number: carried out late, answered to nobody, posted once.
    finally_sent: dict[str, datetime] = {}
    timed_out: set[str] = set()
    for message_id, _attempt, status, started_at, detail in sends:
        if status == "error" and "timed out" in (detail or ""):
            timed_out.add(message_id)
        if status == "ok":
            finally_sent[message_id] = aware(started_at)
    received = {i["message_id"]: datetime.fromisoformat(i["received_at"]) for i in idocs}
    late_idocs = [
        message_id
        for message_id in timed_out & set(finally_sent)
        if received[stable_message_id(message_id)] > finally_sent[message_id]
    ]
    report(
        "late writes",
        delayed={
            "s4": deployment.s4_gate.delayed_requests,
            "erp": deployment.erp_gate.delayed_requests,
        },
        erp_timed_out=len(timed_out),
        idocs_received_after_the_retry_began=len(late_idocs),
        s4_late_writes_rejected=dict(stale),
        settle_s=round(settled, 1),
        attempts=findings.attempts,
        idocs=findings.idocs,
    )
    assert timed_out, "no IDoc post timed out: the delay never bit"
    assert late_idocs, "no IDoc reached ERP after the service had given up on it"
    assert stale, "no late S/4 write met a newer state"
    assert findings.done + findings.superseded == total


@pytest.mark.timeout(60)
def test_sales_area_changed_twice_in_s4_during_one_update_is_still_applied(
    deploy: DeployFactory,
) -> None:
    # What etag_change_rate makes happen now and then under load, made certain: S/4 changes the
    # sales area before the update and again before the update after the re-read.
    deployment = deploy(runtime=EMBEDDED)
    deployment.start_emulators()
    deployment.start_service()
    # one version for an existing sales area (the update path): the latest, so a failure
    # leaves S/4 with the old values
    first = next(r for r in build_workload(268) if r.kind is Kind.S4 and r.key in S4_SEEDED)
    record = Record(first.index, first.kind, first.key, first.versions[:1])
    shot = httpx2.post(
        f"{deployment.s4_url}/emulator/faults/next",
        json={"kind": "etag_change", "count": 2},
        timeout=10,
    )
    assert shot.status_code == 200, shot.text
    reader = StoreReader(deployment.store_url)
    try:
        load = Load(deployment.service_url, [record], senders=1).start()
        load.join()
        wait_settled(reader, len(record.versions), timeout=30, deployment=deployment)
        check_invariants(deployment, [record], load, reader)
    finally:
        reader.close()
