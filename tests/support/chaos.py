"""Chaos tests through real processes: deployments, a versioned workload, senders, invariants.

A :class:`Deployment` writes one TOML configuration and runs ``d365sap emulators``,
``d365sap serve`` and ``d365sap worker`` as separate processes on free loopback ports, so a test
can kill any of them with SIGKILL and start it again on the same store and port. The workload is
a set of target records (S/4 sales areas, ERP sales areas, ERP general data), each sent in several
versions whose values name record and version, so the state a back end ends in shows which
version was applied last. :class:`Load` posts the versions from a few concurrent senders with
``Prefer: respond-async``, one record's versions strictly in order, and repeats a request whose
answer was lost with the same ``X-Message-Id``. :func:`check_invariants` then compares the store,
S/4's data and request journal, and ERP's IDocs and customer master with the workload.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx2
from lxml import etree
from sqlalchemy import create_engine, func, select, text

from d365sap.connectors.idoc import stable_message_id
from d365sap.engine.tables import MessageRow, StepRow
from support.examples import example

INBOUND = "/http/CustomerSalesData_CRM_to_S4HC_ERP"
S4_ROOT = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
CALLER = ("dynamics", "dyn-pw")
S4_USER = ("S4_COMM_USER", "Welcome1!")
SECRETS = {
    "CHAOS_DYNAMICS_PASSWORD": CALLER[1],
    "CHAOS_S4_PASSWORD": S4_USER[1],
    "CHAOS_ERP_PASSWORD": "Welcome1!",
}
OPEN_STATUSES = frozenset({"received", "queued", "processing", "retrying"})
PG_ADMIN_URL = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
JOURNAL_SIZE = 100_000
WRITE_METHODS = (b"POST ", b"PATCH ", b"PUT ", b"MERGE ")

# About a fifth of the requests on every business endpoint fail: reads can only meet errors,
# throttling, timeouts and drops (16 %); writes can also lose their answer after the commit, meet
# an expired CSRF token or a changed ETag (22-24 %). Every IDoc POST is a write (24 %).
S4_FAULTS: dict[str, Any] = {
    "error_rate": {"500": 0.04, "502": 0.01, "503": 0.02},
    "retry_after_rate": 0.03,
    "retry_after_seconds": 1,
    "timeout_rate": 0.02,
    "timeout_seconds": 5.0,
    "drop_rate": 0.04,
    "drop_after_commit_rate": 0.04,
    "csrf_expiry_rate": 0.02,
    "etag_change_rate": 0.02,
    "seed": 20260101,
}
ERP_FAULTS: dict[str, Any] = {
    "error_rate": {"500": 0.04, "502": 0.01, "503": 0.02},
    "retry_after_rate": 0.03,
    "retry_after_seconds": 1,
    "timeout_rate": 0.02,
    "timeout_seconds": 5.0,
    "drop_rate": 0.03,
    "drop_after_commit_rate": 0.05,
    "lock_rate": 0.04,
    "seed": 20260102,
}
FAST_RETRIES: dict[str, Any] = {
    "max_attempts": 30,
    "base_delay_seconds": 0.1,
    "max_delay_seconds": 1.0,
    "jitter": 0.5,
}


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port below the ephemeral range, never the same twice in this process.

    Listeners here are bound a while after the port is chosen, and some are closed and bound
    again (the service after a kill, a closed gate): meanwhile a port of the ephemeral range may
    be handed to any outgoing connection, one below it is not.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


# -- configuration ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(document: Mapping[str, Any], prefix: str = "") -> str:
    """``document`` as TOML: scalars first, then tables and arrays of tables (enough for us)."""
    lines: list[str] = []
    nested: list[str] = []
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        quoted = json.dumps(str(key)) if not str(key).isidentifier() else str(key)
        if isinstance(value, Mapping):
            body = toml_text(value, name)
            nested.append(f"[{name}]\n{body}" if body.strip() else f"[{name}]\n")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                nested.append(f"[[{name}]]\n{toml_text(item, name)}")
        else:
            lines.append(f"{quoted} = {_toml_value(value)}")
    return "\n".join(lines) + "\n" + "\n".join(nested)


def pg_available() -> bool:
    """Whether the test PostgreSQL answers."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"d365sap_chaos_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


# -- processes ----------------------------------------------------------------------------------


def wait_until_up(url: str, process: Process | None = None, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers below 500; fail early when ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(url, timeout=1.0).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        if process is not None and not process.alive:
            raise AssertionError(f"{process.name} exited at start:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            tail = process.log_tail() if process is not None else ""
            raise AssertionError(f"{url} did not come up in {timeout} s\n{tail}")
        time.sleep(0.05)


class Process:
    """One ``python -m d365sap ...`` process with its output in a log file."""

    def __init__(self, name: str, args: Sequence[str], *, cwd: Path, env: Mapping[str, str]):
        self.name = name
        self.log = cwd / f"{name}.log"
        with self.log.open("ab") as sink:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "d365sap", *args],
                cwd=cwd,
                env=dict(env),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut off."""
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if not self.alive:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            content = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.name} log (last {lines} lines) ---\n" + "\n".join(content[-lines:])


class TcpGate:
    """A loopback TCP forwarder in front of a back end: it can be closed, reopened and slowed.

    Closed, its port refuses connections and open ones are cut: the back end is off the network
    while keeping its state (an in-memory emulator would lose it in a restart). With ``delay``
    set, bytes from the service reach the back end that much later, whole and even after the
    service gave up and closed its connection: the back end then carries out a request whose
    sender already counted it as timed out, possibly after the sender's retry.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.delay = 0.0
        self.delayed_requests = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening (new connections are refused) and cut every open connection."""
        listener, self._listener = self._listener, None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            self._cut(sock)

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        # shutdown wakes the threads blocked on the socket; linger 0 makes the close a reset
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._forward, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answer, args=(upstream, client), daemon=True).start()

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        """Service to back end, each chunk held for the delay in force when it arrived.

        When the service closes its side, what it sent is still delivered and the back end's
        connection stays open for its answer (which :meth:`_answer` then cannot deliver).
        """
        chunks: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()

        def deliver() -> None:
            while (item := chunks.get()) is not None:
                due, chunk = item
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    upstream.sendall(chunk)
                except OSError:
                    return

        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        try:
            while chunk := client.recv(65536):
                held = self.delay if chunk.startswith(WRITE_METHODS) else 0.0
                if held:
                    self.delayed_requests += 1
                chunks.put((time.monotonic() + held, chunk))
        except OSError:
            pass
        finally:
            chunks.put(None)

    def _answer(self, upstream: socket.socket, client: socket.socket) -> None:
        """Back end to service; when either side is gone, both connections are closed."""
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets -= {client, upstream}
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass
class Deployment:
    """Emulators, service and workers of one test as processes sharing one configuration."""

    workdir: Path
    store_url: str
    runtime: dict[str, Any] = field(default_factory=dict)
    s4_faults: dict[str, Any] = field(default_factory=dict)
    erp_faults: dict[str, Any] = field(default_factory=dict)
    backend_timeout: float = 2.0
    gates: bool = False
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.s4_port, self.erp_port, self.service_port = free_port(), free_port(), free_port()
        self.s4_gate = TcpGate(self.s4_port) if self.gates else None
        self.erp_gate = TcpGate(self.erp_port) if self.gates else None
        s4_port_for_service = self.s4_gate.port if self.s4_gate else self.s4_port
        erp_port_for_service = self.erp_gate.port if self.erp_gate else self.erp_port
        document = {
            "service": {"host": "127.0.0.1", "port": self.service_port},
            "inbound": {"users": [{"name": CALLER[0], "password_env": "CHAOS_DYNAMICS_PASSWORD"}]},
            "store": {"url": self.store_url},
            "runtime": {"respond_async": False, "sync_wait_seconds": 5.0, **self.runtime},
            "logging": {"level": self.log_level, "format": "json"},
            "s4": {
                "base_url": f"http://127.0.0.1:{s4_port_for_service}{S4_ROOT}",
                "user": S4_USER[0],
                "password_env": "CHAOS_S4_PASSWORD",
                "timeout_seconds": self.backend_timeout,
            },
            "erp": {
                "idoc_url": f"http://127.0.0.1:{erp_port_for_service}/sap/bc/srt/idoc"
                "?sap-client=001",
                "user": "IDOC_USER",
                "password_env": "CHAOS_ERP_PASSWORD",
                "timeout_seconds": self.backend_timeout,
            },
            "emulators": {
                "host": "127.0.0.1",
                "s4_port": self.s4_port,
                "erp_port": self.erp_port,
                "dataverse_port": 0,
                "s4": {"journal_size": JOURNAL_SIZE, "faults": self.s4_faults},
                "erp": {"faults": self.erp_faults},
            },
        }
        self.config = self.workdir / "d365sap.toml"
        self.config.write_text(toml_text(document), encoding="utf-8")
        self.env = {**os.environ, **SECRETS, "D365SAP_CONFIG": str(self.config)}
        self.service_url = f"http://127.0.0.1:{self.service_port}"
        self.s4_url = f"http://127.0.0.1:{self.s4_port}"
        self.erp_url = f"http://127.0.0.1:{self.erp_port}"
        self.processes: list[Process] = []
        self.service: Process | None = None
        self.workers: list[Process] = []
        self._counter = itertools.count()

    def _spawn(self, name: str, *args: str) -> Process:
        process = Process(
            f"{name}{next(self._counter)}",
            [*args, "--config", str(self.config)],
            cwd=self.workdir,
            env=self.env,
        )
        self.processes.append(process)
        return process

    def start_emulators(self) -> None:
        emulators = self._spawn("emulators", "emulators")
        wait_until_up(f"{self.s4_url}/emulator/health", emulators)
        wait_until_up(f"{self.erp_url}/emulator/health", emulators)
        for gate in (self.s4_gate, self.erp_gate):
            if gate is not None:
                gate.open()

    def start_service(self) -> Process:
        """``d365sap serve`` on the configured port (also after a kill: same port, same store)."""
        self.service = self._spawn("serve", "serve")
        wait_until_up(f"{self.service_url}/health", self.service, timeout=60)
        return self.service

    def start_worker(self) -> Process:
        worker = self._spawn("worker", "worker")
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(p.log_tail() for p in self.processes)

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        for gate in (self.s4_gate, self.erp_gate):
            if gate is not None:
                gate.close()

    # emulator admin
    def faults(self, system: str) -> dict[str, Any]:
        base = self.s4_url if system == "s4" else self.erp_url
        return dict(httpx2.get(f"{base}/emulator/faults", timeout=10).json())

    def set_faults(self, system: str, settings: Mapping[str, Any] | None) -> None:
        base = self.s4_url if system == "s4" else self.erp_url
        if settings is None:
            response = httpx2.delete(f"{base}/emulator/faults", timeout=10)
        else:
            response = httpx2.put(f"{base}/emulator/faults", json=dict(settings), timeout=10)
        assert response.status_code == 200, response.text


# -- the workload -------------------------------------------------------------------------------


class Kind(StrEnum):
    S4 = "s4"
    ERP_AREA = "erp_area"
    ERP_ACCOUNT = "erp_account"


S4_CUSTOMERS = ("17100001", "17100002", "17100003", "17100004", "10100001")
S4_SALES_ORGS = ("1710", "1720", "1730", "1010")
S4_DIVISIONS = ("00", "10")
S4_SEEDED = {
    ("17100002", "1710", "10", "00"),
    ("17100003", "1710", "10", "00"),
    ("17100003", "1710", "20", "00"),
    ("17100004", "1710", "10", "00"),
    ("10100001", "1010", "10", "00"),
}
ERP_CUSTOMERS = ("100123", "100124")
ERP_SALES_ORGS = ("1000", "1100", "1200", "1300")
ERP_DIVISIONS = ("00", "10", "20")
ERP_ACCOUNTS = ("100123", "100124", "100200")


@dataclass(frozen=True)
class Version:
    """One message of the workload: a version of one record."""

    record: int
    number: int
    source_id: str
    payload: bytes
    values: Mapping[str, str]


@dataclass
class Record:
    """One target record and the versions sent for it, oldest first."""

    index: int
    kind: Kind
    key: tuple[str, ...]
    versions: list[Version] = field(default_factory=list)

    @property
    def latest(self) -> Version:
        return self.versions[-1]


def _set(root: etree._Element, path: str, value: str) -> None:
    element = root.find(path)
    assert element is not None, path
    element.text = value


def _details_payload(template: str, key: tuple[str, ...], values: Mapping[str, str]) -> bytes:
    root = etree.fromstring(example(template))
    customer, sales_org, channel, division = key
    _set(root, "erpaccountdetail/number", customer)
    _set(root, "linkederporg/sap_vkorg", sales_org)
    _set(root, "linkederporg/sap_vtweg", channel)
    _set(root, "linkederporg/sap_spart", division)
    _set(root, "erpaccountdetail/salesgroup", values["salesgroup"])
    _set(root, "erpaccountdetail/customergroup", values["customergroup"])
    _set(root, "erpaccountdetail/salesdistrict", values["salesdistrict"])
    _set(root, "erpaccountdetail/salesoffice", values["salesoffice"])
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _accounts_payload(kunnr: str, values: Mapping[str, str]) -> bytes:
    root = etree.fromstring(example("in_erpaccounts_ECC.xml"))
    _set(root, "erpaccount/number", kunnr)
    _set(root, "erpaccount/name2", values["name2"])
    _set(root, "erpaccount/searchname", values["searchname"])
    _set(root, "erpaccount/addr1zip", values["addr1zip"])
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _values(kind: Kind, record: int, version: int) -> dict[str, str]:
    """Values that name record and version, within each target field's length."""
    if kind is Kind.ERP_ACCOUNT:
        return {
            "name2": f"Werk R{record:02d} V{version:02d}",
            "searchname": f"R{record:02d}V{version:02d}",
            "addr1zip": f"{44000 + record * 10 + version}",
        }
    return {
        "salesgroup": f"{version}{record:02d}"[-3:],
        "customergroup": f"{version:02d}",
        "salesdistrict": f"R{record:02d}V{version:02d}",
        "salesoffice": f"{record:02d}{version:02d}",
    }


def build_workload(total: int = 500, *, seed: int = 7) -> list[Record]:
    """About 75 records with 4 to 9 versions each, ``total`` messages in all."""
    keys: list[tuple[Kind, tuple[str, ...]]] = [
        (Kind.S4, (customer, org, "10", division))
        for customer in S4_CUSTOMERS
        for org in S4_SALES_ORGS
        for division in S4_DIVISIONS
    ]
    keys += [
        (Kind.ERP_AREA, (customer, org, "10", division))
        for customer in ERP_CUSTOMERS
        for org in ERP_SALES_ORGS
        for division in ERP_DIVISIONS
    ]
    keys += [(Kind.ERP_ACCOUNT, (kunnr,)) for kunnr in ERP_ACCOUNTS]
    rng = random.Random(seed)
    counts = [4] * len(keys)
    for _ in range(total - sum(counts)):
        candidates = [i for i, n in enumerate(counts) if n < 9]
        counts[rng.choice(candidates)] += 1
    records: list[Record] = []
    for index, ((kind, key), count) in enumerate(zip(keys, counts, strict=True)):
        record = Record(index, kind, key)
        for number in range(1, count + 1):
            values = _values(kind, index, number)
            if kind is Kind.ERP_ACCOUNT:
                payload = _accounts_payload(key[0], values)
            else:
                template = (
                    "in_erpaccountdetails_S4HC.xml"
                    if kind is Kind.S4
                    else "in_erpaccountdetails_ECC.xml"
                )
                payload = _details_payload(template, key, values)
            record.versions.append(Version(index, number, str(uuid.uuid4()), payload, values))
        records.append(record)
    assert sum(len(r.versions) for r in records) == total
    return records


def lanes(records: Sequence[Record], senders: int) -> list[list[Version]]:
    """Each record to one sender; a sender sends version 1 of its records, then 2, and so on."""
    lanes_: list[list[Version]] = [[] for _ in range(senders)]
    owned: list[list[Record]] = [[] for _ in range(senders)]
    for record in records:
        owned[record.index % senders].append(record)
    for lane, mine in zip(lanes_, owned, strict=True):
        depth = max((len(r.versions) for r in mine), default=0)
        for number in range(depth):
            lane.extend(r.versions[number] for r in mine if number < len(r.versions))
    return lanes_


# -- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """The service's 2xx answer to one version (after however many tries)."""

    source_id: str
    status: int
    message_id: str
    duplicate: bool
    tries: int
    at: float


class Load:
    """Concurrent senders posting the workload with ``Prefer: respond-async``.

    A try that meets no answer (service down, connection cut) or a 5xx is repeated with the same
    ``X-Message-Id`` until the deadline: a message the service stored before its answer was lost
    is then answered as a duplicate, not stored twice. Versions of one record go strictly one
    after the other. ``pace`` spaces a sender's messages (seconds), to spread a load over time.
    """

    def __init__(
        self,
        url: str,
        records: Sequence[Record],
        *,
        senders: int = 4,
        pace: float = 0.0,
        deadline_seconds: float = 120.0,
    ) -> None:
        self.url = url + INBOUND
        self.lanes = lanes(records, senders)
        self.pace = pace
        self.deadline = time.monotonic() + deadline_seconds
        self.answers: dict[str, Answer] = {}
        self.problems: list[str] = []
        self.unanswered_tries = 0
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._run, args=(lane,), name=f"sender{n}", daemon=True)
            for n, lane in enumerate(self.lanes)
        ]

    @property
    def total(self) -> int:
        return sum(len(lane) for lane in self.lanes)

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def wait_accepted(self, count: int, timeout: float = 60.0) -> None:
        """Block until ``count`` messages have their 2xx answer."""
        end = time.monotonic() + timeout
        with self._accepted:
            while len(self.answers) < count:
                left = end - time.monotonic()
                if left <= 0 or self.problems:
                    raise AssertionError(
                        f"{len(self.answers)} of {count} messages accepted; {self.problems[:5]}"
                    )
                self._accepted.wait(min(left, 0.5))

    def join(self) -> None:
        for thread in self._threads:
            thread.join(max(0.0, self.deadline - time.monotonic()) + 5)
        assert not any(t.is_alive() for t in self._threads), "senders did not finish"
        assert not self.problems, self.problems[:10]
        assert len(self.answers) == self.total, f"{len(self.answers)} of {self.total} answered"

    def _run(self, lane: list[Version]) -> None:
        with httpx2.Client(timeout=15.0) as client:
            for version in lane:
                if not self._send(client, version):
                    return
                if self.pace:
                    time.sleep(self.pace)

    def _send(self, client: httpx2.Client, version: Version) -> bool:
        headers = {
            "Content-Type": "application/xml",
            "Prefer": "respond-async",
            "X-Message-Id": version.source_id,
        }
        for tries in itertools.count(1):
            if time.monotonic() > self.deadline:
                self._problem(f"{version.source_id}: no 2xx answer before the deadline")
                return False
            try:
                response = client.post(
                    self.url, content=version.payload, headers=headers, auth=CALLER
                )
            except httpx2.HTTPError:
                with self._lock:
                    self.unanswered_tries += 1
                time.sleep(0.05)
                continue
            if response.status_code >= 500:
                with self._lock:
                    self.unanswered_tries += 1
                time.sleep(0.05)
                continue
            if not 200 <= response.status_code < 300:
                self._problem(
                    f"{version.source_id}: answered {response.status_code} {response.text[:300]}"
                )
                return False
            body = response.json()
            answer = Answer(
                version.source_id,
                response.status_code,
                str(body["message_id"]),
                bool(body.get("duplicate")),
                tries,
                time.monotonic(),
            )
            with self._accepted:
                self.answers[version.source_id] = answer
                self._accepted.notify_all()
            return True
        raise AssertionError("unreachable")

    def _problem(self, text_: str) -> None:
        with self._accepted:
            self.problems.append(text_)
            self._accepted.notify_all()


# -- the store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A message row as the invariants need it."""

    id: str
    source_id: str | None
    seq: int
    status: str
    outcome: str | None
    attempts: int
    lock_key: str | None
    result: dict[str, Any] | None
    error: str | None


class StoreReader:
    """Reads the service's store directly (SQLite file or PostgreSQL), never writes."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def messages(self) -> list[Stored]:
        query = select(
            MessageRow.id,
            MessageRow.source_id,
            MessageRow.seq,
            MessageRow.status,
            MessageRow.outcome,
            MessageRow.attempts,
            MessageRow.lock_key,
            MessageRow.result,
            MessageRow.error,
        ).order_by(MessageRow.seq)
        with self.engine.connect() as connection:
            return [Stored(**row._mapping) for row in connection.execute(query)]

    def counts(self) -> dict[str, int]:
        query = select(MessageRow.status, func.count()).group_by(MessageRow.status)
        with self.engine.connect() as connection:
            return {str(status): int(n) for status, n in connection.execute(query)}

    def steps(self, name: str) -> list[Any]:
        """Every recorded step called ``name``: message id, attempt, status, start, detail."""
        query = select(
            StepRow.message_id, StepRow.attempt, StepRow.status, StepRow.started_at, StepRow.detail
        ).where(StepRow.name == name)
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def failed_steps(self, containing: str | None = None) -> Counter[str]:
        """How many steps of each name failed (with ``containing`` in their detail), overall."""
        query = (
            select(StepRow.name, func.count())
            .where(StepRow.status == "error")
            .group_by(StepRow.name)
        )
        if containing is not None:
            query = query.where(StepRow.detail.contains(containing))
        with self.engine.connect() as connection:
            return Counter({str(name): int(n) for name, n in connection.execute(query)})


def wait_settled(
    reader: StoreReader,
    expected: int,
    *,
    timeout: float,
    deployment: Deployment | None = None,
) -> float:
    """Wait until the store holds ``expected`` messages and none is open; returns the wait."""
    start = time.monotonic()
    counts: dict[str, int] = {}
    while time.monotonic() - start < timeout:
        if deployment is not None and deployment.service is not None:
            service = deployment.service
            assert service.alive, f"the service ended ({service.popen.returncode}) while waiting"
        counts = reader.counts()
        open_ = sum(n for status, n in counts.items() if status in OPEN_STATUSES)
        if open_ == 0 and sum(counts.values()) >= expected:
            return time.monotonic() - start
        time.sleep(0.25)
    stuck = [m for m in reader.messages() if m.status in OPEN_STATUSES][:5]
    details = "\n".join(
        json.dumps(message_details(deployment.service_url, m.id)) if deployment else m.id
        for m in stuck
    )
    logs = deployment.logs() if deployment else ""
    raise AssertionError(
        f"not settled after {timeout} s: {counts}, expected {expected}\n{details}\n{logs}"
    )


def message_details(service_url: str, message_id: str) -> dict[str, Any]:
    """What ``/api/messages/{id}`` says about a message: status, attempts and every step."""
    try:
        body = httpx2.get(f"{service_url}/api/messages/{message_id}", timeout=10).json()
    except httpx2.HTTPError as exc:
        return {"id": message_id, "unreadable": str(exc)}
    keep = ("id", "status", "outcome", "attempts", "business_key", "error", "result")
    shown = {k: body.get(k) for k in keep}
    shown["steps"] = [
        f"{s['attempt']}:{s['name']}:{s['status']}:{s.get('backend_status')}:"
        f"{(s.get('detail') or '')[:120]}"
        for s in body.get("steps", [])
    ]
    return shown


# -- invariants ---------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the invariant check looked at, for the test's own extra assertions and reports."""

    messages: int = 0
    done: int = 0
    superseded: int = 0
    attempts: int = 0
    retried_messages: int = 0
    s4_posts: int = 0
    idocs: int = 0
    problems: list[str] = field(default_factory=list)


_MARK = re.compile(r"R(\d{2})V(\d{2})")


def version_mark(value: object) -> tuple[int, int] | None:
    """(record, version) from a value written by :func:`_values` (``R05V03``), if any."""
    match = _MARK.search(str(value or ""))
    return (int(match[1]), int(match[2])) if match else None


def _idoc_mark(raw_xml: str) -> tuple[int, int] | None:
    """The version an IDoc carries: its BZIRK (sales data) or SORTL (general data) value."""
    for name in ("BZIRK", "SORTL"):
        match = re.search(rf"<{name}>([^<]*)</{name}>", raw_xml)
        if match and (mark := version_mark(match[1])):
            return mark
    return None


def _non_decreasing(sequence: Sequence[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(sequence))


def _sales_area_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(entry.get(name, ""))
        for name in ("Customer", "SalesOrganization", "DistributionChannel", "Division")
    )


def check_invariants(
    deployment: Deployment,
    records: Sequence[Record],
    load: Load,
    reader: StoreReader,
) -> Findings:
    """Nothing lost, nothing applied twice, every record at its latest version.

    Collects every violation (with the messages' steps from the message API) and fails once.
    """
    found = Findings()
    problems = found.problems
    rows = reader.messages()
    by_source = {row.source_id: row for row in rows}
    versions = {v.source_id: v for r in records for v in r.versions}
    found.messages = len(rows)
    found.attempts = sum(row.attempts for row in rows)
    found.retried_messages = sum(1 for row in rows if row.attempts > 1)

    # The store: each accepted message once, final, answered with its own id.
    strays = [row.id for row in rows if row.source_id not in versions]
    if strays:
        problems.append(f"{len(strays)} stored messages not sent by the test: {strays[:5]}")
    for source_id, answer in load.answers.items():
        row = by_source.get(source_id)
        if row is None:
            problems.append(f"LOST: {source_id} was answered {answer.status} but is not stored")
        elif row.id != answer.message_id:
            problems.append(f"{source_id}: answered as {answer.message_id}, stored as {row.id}")
    for source_id in versions:
        if source_id not in load.answers and source_id in by_source:
            problems.append(f"{source_id} stored but never answered")
    bad: list[str] = []
    for record in records:
        applied = [by_source[v.source_id] for v in record.versions if v.source_id in by_source]
        for number, row in enumerate(applied, start=1):
            newer_done = any(r.status == "done" for r in applied[number:])
            if row.status == "done":
                found.done += 1
            elif row.status == "superseded" and newer_done:
                found.superseded += 1
            else:
                bad.append(row.id)
                problems.append(f"record {record.key} version {number}: {row.status} ({row.error})")
        if applied and applied[-1].status != "done":
            problems.append(f"record {record.key}: latest version is {applied[-1].status}")
        outcomes = {r.outcome for r in applied if r.status == "done"}
        allowed = {"created", "updated"} if record.kind is Kind.S4 else {"idoc_sent"}
        if not outcomes <= allowed:
            problems.append(f"record {record.key}: outcomes {outcomes}")

    _check_s4(deployment, records, found)
    _check_erp(deployment, records, by_source, found)
    if problems:
        details = [json.dumps(message_details(deployment.service_url, mid)) for mid in bad[:8]]
        raise AssertionError(
            f"{len(problems)} invariant violation(s):\n"
            + "\n".join(problems[:40])
            + ("\n" + "\n".join(details) if details else "")
        )
    return found


def _check_s4(deployment: Deployment, records: Sequence[Record], found: Findings) -> None:
    problems = found.problems
    # The check reads through S/4's OData service too: no injected faults from here on
    # (settings replaced by none; the counters stay for the test to look at).
    deployment.set_faults("s4", {})
    response = httpx2.get(
        f"{deployment.s4_url}{S4_ROOT}/A_CustomerSalesArea",
        params={"$format": "json"},
        auth=S4_USER,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    areas: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for entity in response.json()["d"]["results"]:
        areas[_sales_area_of(entity)].append(entity)
    journal_response = httpx2.get(f"{deployment.s4_url}/emulator/requests", timeout=30)
    journal = journal_response.json()["requests"]
    assert len(journal) < JOURNAL_SIZE, "the S/4 journal overflowed: POSTs may be missing"
    posts: Counter[tuple[str, ...]] = Counter()
    applied: dict[int, list[int]] = defaultdict(list)  # record -> versions written, in order
    for entry in journal:
        path = str(entry["path"]).strip("/")
        if not path.startswith("A_CustomerSalesArea") or entry["status"] not in (200, 201, 204):
            continue
        if entry["method"] == "POST" and path == "A_CustomerSalesArea":
            posts[_sales_area_of(entry["body"] or {})] += 1
        mark = version_mark((entry["body"] or {}).get("SalesDistrict"))
        if entry["method"] in ("POST", "PATCH", "MERGE", "PUT") and mark is not None:
            applied[mark[0]].append(mark[1])
    found.s4_posts = sum(posts.values())
    for area, count in posts.items():
        if count > 1:
            problems.append(f"DUPLICATE: S/4 sales area {area} created by {count} POSTs")
    for record in records:
        if record.kind is not Kind.S4:
            continue
        entities = areas.get(record.key, [])
        if len(entities) != 1:
            problems.append(f"S/4 sales area {record.key}: {len(entities)} entities")
            continue
        entity, latest = entities[0], record.latest.values
        expected = {
            "SalesGroup": latest["salesgroup"],
            "CustomerGroup": latest["customergroup"],
            "SalesDistrict": latest["salesdistrict"],
            "SalesOffice": latest["salesoffice"],
        }
        actual = {name: entity.get(name) for name in expected}
        if actual != expected:
            problems.append(f"S/4 sales area {record.key}: {actual}, latest is {expected}")
        if record.key not in S4_SEEDED and posts[record.key] != 1:
            problems.append(f"S/4 sales area {record.key}: {posts[record.key]} successful POSTs")
        written = applied.get(record.index, [])
        if not _non_decreasing(written):
            problems.append(f"S/4 sales area {record.key}: versions written in order {written}")
        if not written or written[-1] != record.latest.number:
            problems.append(f"S/4 sales area {record.key}: last write {written[-1:]}")


def _check_erp(
    deployment: Deployment,
    records: Sequence[Record],
    by_source: Mapping[str | None, Stored],
    found: Findings,
) -> None:
    problems = found.problems
    idocs = httpx2.get(f"{deployment.erp_url}/emulator/idocs", timeout=30).json()["idocs"]
    found.idocs = len(idocs)
    by_message: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for idoc in idocs:
        by_message[idoc["message_id"]].append(idoc)
    expected_ids: set[str] = set()
    for record in records:
        if record.kind is Kind.S4:
            continue
        for version in record.versions:
            row = by_source.get(version.source_id)
            if row is None:
                continue
            sap_id = stable_message_id(row.id)
            expected_ids.add(sap_id)
            posted = by_message.get(sap_id, [])
            numbers = [idoc["docnum"] for idoc in posted]
            if len(posted) > 1:
                problems.append(f"DUPLICATE: message {row.id} posted as IDocs {numbers}")
            if row.status == "done":
                if len(posted) != 1:
                    problems.append(f"message {row.id} done but posted as IDocs {numbers}")
                    continue
                idoc = posted[0]
                if idoc["status"] != "53":
                    problems.append(f"IDoc {idoc['docnum']} of {row.id}: {idoc['status_text']}")
                stored_number = (row.result or {}).get("idoc_number", "")
                if str(stored_number).lstrip("0") != str(idoc["docnum"]).lstrip("0"):
                    problems.append(
                        f"message {row.id}: result names IDoc {stored_number}, "
                        f"ERP holds {idoc['docnum']}"
                    )
    strays = [idoc["docnum"] for idoc in idocs if idoc["message_id"] not in expected_ids]
    if strays:
        problems.append(f"IDocs of no message: {strays[:10]}")
    # Independent of message ids: each version's content reached ERP at most once, in order.
    posted_versions: dict[int, list[int]] = defaultdict(list)
    for idoc in sorted(idocs, key=lambda i: str(i["docnum"])):
        mark = _idoc_mark(str(idoc["raw_xml"]))
        if mark is None:
            problems.append(f"IDoc {idoc['docnum']} carries no version of the workload")
            continue
        posted_versions[mark[0]].append(mark[1])
    for record_index, numbers in posted_versions.items():
        repeated = sorted(n for n, count in Counter(numbers).items() if count > 1)
        if repeated:
            problems.append(f"DUPLICATE: record {record_index} versions {repeated} posted twice")
        if not _non_decreasing(numbers):
            problems.append(f"record {record_index}: IDocs posted in version order {numbers}")
    customers: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.kind is Kind.S4:
            continue
        kunnr = record.key[0]
        if kunnr not in customers:
            response = httpx2.get(f"{deployment.erp_url}/emulator/customers/{kunnr}", timeout=30)
            assert response.status_code == 200, response.text
            customers[kunnr] = response.json()
        customer, latest = customers[kunnr], record.latest.values
        if record.kind is Kind.ERP_ACCOUNT:
            expected = {
                "NAME2": latest["name2"],
                "SORTL": latest["searchname"],
                "PSTLZ": latest["addr1zip"],
            }
            actual = {name: customer["kna1"].get(name) for name in expected}
        else:
            _, vkorg, vtweg, spart = record.key
            matching = [
                area
                for area in customer["sales_areas"]
                if (area["vkorg"], area["vtweg"], area["spart"]) == (vkorg, vtweg, spart)
            ]
            if len(matching) != 1:
                problems.append(f"ERP sales area {record.key}: {len(matching)} rows")
                continue
            expected = {
                "VKGRP": latest["salesgroup"],
                "KDGRP": latest["customergroup"],
                "BZIRK": latest["salesdistrict"],
                "VKBUR": latest["salesoffice"],
            }
            actual = {name: matching[0]["knvv"].get(name) for name in expected}
        if actual != expected:
            problems.append(f"ERP {record.kind} {record.key}: {actual}, latest is {expected}")


def injected(deployment: Deployment) -> dict[str, dict[str, int]]:
    """Fault counters of both emulators (kinds with a count above zero)."""
    return {
        system: {k: n for k, n in deployment.faults(system)["counters"].items() if n}
        for system in ("s4", "erp")
    }
