"""``d365sap messages`` run as real processes against a SQLite store prepared here."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from d365sap.engine.queue import add_job
from d365sap.engine.runtime import JobRequest
from d365sap.engine.store import Arrival, MessageStore, Outcome
from d365sap.engine.tables import JobRow
from d365sap.engine.trace import Trace
from support.examples import example

S4HC = example("in_erpaccountdetails_S4HC.xml")
ACCOUNTS = example("in_erpaccounts_ECC.xml")
ERROR = "S/4HANA Cloud answered 400: Customer 17199999 does not exist"


class TableEnqueuer:
    def enqueue(self, session: Session, job: JobRequest) -> None:
        add_job(session, job)


@dataclass
class Env:
    root: Path
    config: Path
    url: str

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "COLUMNS": "250", **(env or {})}
        environment.pop("D365SAP_CONFIG", None)
        return subprocess.run(
            [sys.executable, "-m", "d365sap", "messages", *args, "--config", str(self.config)],
            cwd=self.root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def store(self) -> MessageStore:
        return MessageStore.open(self.url)

    def add(self, payload: bytes, key: str, status: str = "failed", *, route: str = "s4hc") -> str:
        """A message that went through one attempt and ended in ``status``."""
        store = self.store()
        try:
            arrival = Arrival(
                flow="customer",
                payload=payload,
                content_type="application/xml",
                correlation_id=f"corr-{key}",
                source_id=f"source-{key}",
                route=route,
                business_key=key,
                queue="erp" if route.startswith("erp") else "s4hc",
            )
            message, _ = store.accept(arrival, TableEnqueuer())
            started = store.begin_attempt(message.id)
            assert not isinstance(started, str)
            trace = Trace()
            with trace.step("parse"):
                pass
            outcome = Outcome(
                status=status,
                outcome="error" if status == "failed" else "created",
                http_status=422 if status == "failed" else 201,
                result={"outcome": "error" if status == "failed" else "created"},
                error=ERROR if status == "failed" else None,
            )
            store.settle(message.id, attempt=started[1], outcome=outcome, trace=trace)
            with store.write() as session:
                session.query(JobRow).filter(JobRow.message_id == message.id).delete()
            return message.id
        finally:
            store.close()

    def status(self, message_id: str) -> str:
        store = self.store()
        try:
            view = store.status_of(message_id)
            assert view is not None
            return view.status
        finally:
            store.close()

    def job_ids(self) -> set[str]:
        store = self.store()
        try:
            with store.sessions() as session:
                return set(session.scalars(select(JobRow.message_id)).all())
        finally:
            store.close()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "d365sap.toml"
    # S/4 is unreachable on purpose: nothing here may talk to a back end except a dry run
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[s4]\nbase_url = "http://127.0.0.1:9/sap"\n', encoding="utf-8"
    )
    return Env(tmp_path, config, url)


def test_list_filters_and_counts(env: Env) -> None:
    failed = env.add(S4HC, "17100001/1710/10/00")
    env.add(ACCOUNTS, "100123", "done", route="erp_account")

    everything = env.run("list")
    only_failed = env.run("list", "--status", "failed", "--since", "1h")
    by_key = env.run("list", "--key", "100123")

    assert everything.returncode == 0, everything.stderr
    assert "2 messages in the store: 1 done · 1 failed" in everything.stdout
    assert failed in only_failed.stdout
    assert "100123" not in only_failed.stdout
    assert failed not in by_key.stdout
    assert env.run("list", "--since", "2030-01-01T00:00:00").stdout.count("customer") == 0


def test_list_rejects_bad_filters(env: Env) -> None:
    assert env.run("list", "--since", "yesterday").returncode == 2
    assert env.run("list", "--status", "broken").returncode == 2


def test_show_attempts_versions_and_payload(env: Env) -> None:
    message_id = env.add(S4HC, "17100001/1710/10/00")

    shown = env.run("show", message_id)
    payload = subprocess.run(
        [
            sys.executable,
            "-m",
            "d365sap",
            "messages",
            "show",
            message_id,
            "--payload",
            "1",
            "--config",
            str(env.config),
        ],
        capture_output=True,
        check=False,
    )

    assert shown.returncode == 0, shown.stderr
    assert "Customer 17199999 does not exist" in shown.stdout
    assert "Attempts and steps" in shown.stdout
    assert "1 (current)" in shown.stdout
    assert payload.returncode == 0
    assert payload.stdout == S4HC
    assert env.run("show", "no-such-id").returncode == 1
    assert env.run("show", message_id, "--payload", "7").returncode == 1


def test_retry_by_id_and_refusals(env: Env) -> None:
    failed = env.add(S4HC, "17100001/1710/10/00")
    done = env.add(ACCOUNTS, "100123", "done", route="erp_account")

    retried = env.run("retry", failed)
    again = env.run("retry", failed, done, "no-such-id")

    assert retried.returncode == 0, retried.stderr + retried.stdout
    assert "1 retried, 0 refused" in retried.stdout
    assert env.status(failed) == "queued"
    assert failed in env.job_ids()
    assert again.returncode == 1
    assert "already queued" in again.stdout
    assert "use force" in again.stdout
    assert "no message no-such-id" in again.stdout
    assert env.run("retry", done, "--force").returncode == 0
    assert env.status(done) == "queued"


def test_retry_usage_errors(env: Env) -> None:
    message_id = env.add(S4HC, "K")
    assert env.run("retry").returncode == 2
    assert env.run("retry", message_id, "--all-matching").returncode == 2
    assert env.run("retry", message_id, "--status", "failed").returncode == 2
    assert env.status(message_id) == "failed"


def test_retry_all_matching_acts_on_failed_messages_oldest_first(env: Env) -> None:
    failed = [env.add(S4HC + f"<!-- {n} -->".encode(), f"K{n}") for n in range(6)]
    other = env.add(S4HC, "OTHER")
    done = env.add(ACCOUNTS, "100123", "done", route="erp_account")

    by_key = env.run("retry", "--all-matching", "--key", "OTHER")
    rest = env.run("retry", "--all-matching", "--since", "1h")

    assert by_key.returncode == 0, by_key.stderr
    assert env.status(other) == "queued"
    assert rest.returncode == 0, rest.stderr
    assert "6 retried, 0 refused" in rest.stdout
    assert rest.stdout.index(failed[0]) < rest.stdout.index(failed[5])
    assert env.status(done) == "done"
    assert env.job_ids() == {*failed, other}
    nothing = env.run("retry", "--all-matching")
    assert nothing.returncode == 0
    assert "no message matches" in nothing.stderr


def test_retry_dry_run_writes_nothing(env: Env) -> None:
    erp = env.add(ACCOUNTS, "100123", route="erp_account")
    s4 = env.add(S4HC, "17100001/1710/10/00")

    good = env.run("retry", erp, "--dry-run")
    unreachable = env.run("retry", s4, "--dry-run")

    assert good.returncode == 0, good.stderr + good.stdout
    assert "would_send_idoc" in good.stdout
    assert "<E1KNA1M" in good.stdout
    assert "nothing was written" in good.stdout
    assert unreachable.returncode == 1
    assert "check_failed" in unreachable.stdout
    assert env.status(erp) == env.status(s4) == "failed"
    assert env.job_ids() == set()


def test_resubmit_from_a_file_and_from_the_editor(env: Env, tmp_path: Path) -> None:
    message_id = env.add(S4HC, "17100001/1710/10/00")
    corrected = tmp_path / "corrected.xml"
    corrected.write_bytes(
        S4HC.replace(b"<salesgroup>170</salesgroup>", b"<salesgroup>171</salesgroup>")
    )
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_bytes(p.read_bytes().replace(b'171', b'172'))\n",
        encoding="utf-8",
    )

    from_file = env.run("resubmit", message_id, "--file", str(corrected), "-m", "sales group")
    env.run("discard", message_id, "--reason", "to edit it again")
    edited = env.run(
        "resubmit", message_id, "--edit", "--force", env={"EDITOR": f"{sys.executable} {editor}"}
    )

    assert from_file.returncode == 0, from_file.stderr + from_file.stdout
    assert "version 2 queued" in from_file.stdout
    assert edited.returncode == 0, edited.stderr + edited.stdout
    assert "version 3 queued" in edited.stdout
    shown = env.run("show", message_id).stdout
    assert "sales group" in shown
    assert "3 (current)" in shown
    latest = env.run("show", message_id, "--payload", "3").stdout
    assert "<salesgroup>172</salesgroup>" in latest


def test_resubmit_refusals_and_usage_errors(env: Env, tmp_path: Path) -> None:
    message_id = env.add(S4HC, "17100001/1710/10/00")
    invalid = tmp_path / "invalid.xml"
    invalid.write_bytes(S4HC.replace(b"<sap_vkorg>1710</sap_vkorg>", b"<sap_vkorg></sap_vkorg>"))

    dry = env.run("resubmit", message_id, "--file", str(invalid), "--dry-run")
    unchanged = env.run("resubmit", message_id, "--edit", env={"EDITOR": "true"})

    assert dry.returncode == 1
    assert "erpaccountdetails/linkederporg/sap_vkorg" in dry.stdout
    assert unchanged.returncode == 1
    assert "not changed" in unchanged.stderr
    assert env.run("resubmit", message_id).returncode == 2
    missing = env.run("resubmit", message_id, "--file", str(tmp_path / "nothere.xml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    assert env.run("resubmit", "no-such-id", "--file", str(invalid)).returncode == 1
    assert env.status(message_id) == "failed"


def test_discard(env: Env) -> None:
    first = env.add(S4HC, "A")
    second = env.add(S4HC, "B")
    done = env.add(ACCOUNTS, "100123", "done", route="erp_account")

    assert env.run("discard", first).returncode == 2  # no reason
    discarded = env.run("discard", "--all-matching", "--reason", "customers merged")
    refused = env.run("discard", done, "--reason", "too late")

    assert discarded.returncode == 0, discarded.stderr
    assert "2 discarded, 0 refused" in discarded.stdout
    assert env.status(first) == env.status(second) == "discarded"
    assert refused.returncode == 1
    assert "already settled as done" in refused.stdout
    assert "customers merged" in env.run("show", first).stdout


def test_configuration_errors_exit_2(env: Env) -> None:
    env.config.write_text('[store]\nurl = "mysql://nope"\n', encoding="utf-8")
    result = env.run("list")
    assert result.returncode == 2
    assert "store.url" in result.stderr
