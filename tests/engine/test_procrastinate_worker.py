"""d365sap's procrastinate worker: what it changes in procrastinate's own worker."""

from __future__ import annotations

import logging

from procrastinate import App, testing

from d365sap.engine.procrastinate_worker import ClaimingWorker


async def _no_jobs(_queues: object, _worker_id: int, _limit: int) -> list[object]:
    return []


def worker() -> ClaimingWorker:
    app = App(connector=testing.InMemoryConnector())
    return ClaimingWorker(app, claimer=_no_jobs, settled=set(), queues=["q"], name="test")


def test_log_fields_are_built_only_when_procrastinate_logs_info() -> None:
    subject = worker()
    try:
        subject.logger.setLevel(logging.WARNING)
        assert subject._log_extra("start_job", None, None) == {"action": "start_job"}
        subject.logger.setLevel(logging.INFO)
        full = subject._log_extra("start_job", None, None)
    finally:
        subject.logger.setLevel(logging.NOTSET)
    assert full["action"] == "start_job"
    assert full["worker"]["name"] == "test"
