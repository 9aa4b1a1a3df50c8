"""$batch: framing and reading (unit), and chunks with change sets against the emulator over TLS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from d365sap.connectors.dataverse_batch import (
    BatchOperation,
    ChangeSet,
    chunks,
    decode,
    encode,
    settle,
)
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.errors import PermanentError, PreconditionFailedError, ValidationError
from support.dataverse_server import RunningDataverse, dataverse_server

API = "/api/data/v9.2/"


# Framing ---------------------------------------------------------------------------------


def test_encode_frames_operations_and_change_sets() -> None:
    body, content_type = encode(
        [
            BatchOperation.create("accounts", {"name": "Müller & Söhne"}),
            ChangeSet(
                [
                    BatchOperation.upsert("accounts", {"accountnumber": "A'1"}, {"name": "x"}),
                    BatchOperation.delete("accounts", "00000000-0000-0000-0000-000000000001"),
                ]
            ),
        ],
        API,
    )
    boundary = content_type.split("boundary=")[1]
    text = body.decode("utf-8")
    assert content_type.startswith("multipart/mixed; boundary=batch_")
    assert text.startswith(f"--{boundary}\r\n") and text.endswith(f"--{boundary}--\r\n")
    assert "POST /api/data/v9.2/accounts HTTP/1.1\r\n" in text
    assert '{"name": "Müller & Söhne"}' in text
    assert "PATCH /api/data/v9.2/accounts(accountnumber='A''1') HTTP/1.1" in text
    assert "Content-ID: 1\r\n" in text and "Content-ID: 2\r\n" in text
    assert "Content-Type: multipart/mixed; boundary=changeset_" in text
    assert text.count("Content-Transfer-Encoding: binary") == 3


def test_chunks_never_split_a_change_set() -> None:
    one = BatchOperation.create("accounts", {"name": "a"})
    pair = ChangeSet([one, one])
    sizes = [
        [len(i.operations) if isinstance(i, ChangeSet) else 1 for i in chunk]
        for chunk in chunks([one, pair, one, pair, pair], 3)
    ]
    assert sizes == [[1, 2], [1, 2], [2]]
    with pytest.raises(ValidationError) as too_big:
        list(chunks([ChangeSet([one] * 4)], 3))
    assert too_big.value.field == "operations[0]"
    with pytest.raises(ValidationError):
        list(chunks([one], 1001))
    with pytest.raises(ValidationError):
        ChangeSet([BatchOperation.read("accounts", "00000000-0000-0000-0000-000000000001")])


def _part(status: str, headers: str = "", body: str = "", content_id: str | None = None) -> str:
    cid = f"Content-ID: {content_id}\r\n" if content_id else ""
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"{cid}\r\nHTTP/1.1 {status}\r\n{headers}\r\n{body}"
    )


def test_a_failed_change_set_is_traced_to_its_operation() -> None:
    failing = ChangeSet(
        [
            BatchOperation.create("accounts", {"name": "ok"}),
            BatchOperation.update(
                "accounts", "00000000-0000-0000-0000-000000000002", {}, etag='W/"1"'
            ),
        ]
    )
    first = BatchOperation.create("accounts", {"name": "first"})
    never = BatchOperation.create("accounts", {"name": "never"})
    error = json.dumps({"error": {"code": "0x80060882", "message": "version mismatch"}})
    reply = (
        "--b\r\n"
        + _part("204 No Content", "OData-EntityId: https://x/api/data/v9.2/accounts(1)\r\n")
        + "\r\n--b\r\n"
        + _part("412 Precondition Failed", "Content-Type: application/json\r\n", error, "2")
        + "\r\n--b--\r\n"
    )
    results = settle([first, failing, never], decode(reply.encode(), "multipart/mixed; boundary=b"))
    assert [r.state for r in results] == ["applied", "rolled_back", "failed", "not_run"]
    assert results[0].entity_id == "https://x/api/data/v9.2/accounts(1)"
    assert isinstance(results[2].error, PreconditionFailedError)
    assert results[2].error.backend_message == "version mismatch"
    assert isinstance(results[1].error, PreconditionFailedError) and results[1].status == 412
    assert results[3].error is None and results[3].status is None


def test_a_reply_that_is_not_multipart_is_refused() -> None:
    with pytest.raises(PermanentError):
        decode(b"{}", "application/json")
    with pytest.raises(PermanentError):
        decode(b"--b\r\n" + _part("200 OK").encode(), "multipart/mixed; boundary=b")


# Against the emulator --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture(scope="module")
def dataverse(tls: TlsFiles) -> Iterator[RunningDataverse]:
    with dataverse_server(tls) as running:
        yield running


def _numbers(dataverse: RunningDataverse, prefix: str) -> list[str]:
    rows = dataverse.rows("accounts")
    return sorted(
        r["accountnumber"] for r in rows if (r.get("accountnumber") or "").startswith(prefix)
    )


@pytest.mark.anyio
@pytest.mark.e2e
async def test_batches_in_chunks_with_a_failing_change_set(dataverse: RunningDataverse) -> None:
    tag = uuid.uuid4().hex[:6]

    def upsert(n: int, name: str = "ok") -> BatchOperation:
        return BatchOperation.upsert("accounts", {"accountnumber": f"{tag}-{n}"}, {"name": name})

    items = [
        upsert(1),
        ChangeSet([upsert(2), upsert(3, "x" * 161)]),  # too long: the whole set is undone
        upsert(4),
        ChangeSet([upsert(5), upsert(6)]),
        BatchOperation.read("accounts", {"accountnumber": f"{tag}-1"}),
    ]
    async with dataverse.client() as client:
        results = await client.batch(items, chunk_size=3)
        batches = client.stats.requests
    assert [r.state for r in results] == [
        "applied",
        "rolled_back",
        "failed",
        "applied",
        "applied",
        "applied",
        "applied",
    ]
    assert batches == 3  # [1, set of 2], [4, set of 2], [read]
    assert isinstance(results[2].error, PermanentError)
    assert results[2].error.code == "0x80044331"
    assert results[6].row is not None and results[6].row["name"] == "ok"
    assert results[0].entity_id is not None and results[0].entity_id.endswith(")")
    assert _numbers(dataverse, tag) == [f"{tag}-{n}" for n in (1, 4, 5, 6)]


@pytest.mark.anyio
@pytest.mark.e2e
async def test_without_continue_on_error_the_first_failure_stops(
    dataverse: RunningDataverse,
) -> None:
    tag = uuid.uuid4().hex[:6]
    items = [
        BatchOperation.create("accounts", {"name": "a", "accountnumber": f"{tag}-1"}),
        BatchOperation.create("accounts", {"name": "x" * 161, "accountnumber": f"{tag}-2"}),
        BatchOperation.create("accounts", {"name": "c", "accountnumber": f"{tag}-3"}),
        BatchOperation.create("accounts", {"name": "d", "accountnumber": f"{tag}-4"}),
    ]
    async with dataverse.client() as client:
        results = await client.batch(items, chunk_size=3, continue_on_error=False)
        batches = client.stats.requests
    assert [r.state for r in results] == ["applied", "failed", "not_run", "not_run"]
    assert batches == 1
    assert _numbers(dataverse, tag) == [f"{tag}-1"]


@pytest.mark.anyio
@pytest.mark.e2e
async def test_a_chunk_refused_as_a_whole(dataverse: RunningDataverse) -> None:
    tag = uuid.uuid4().hex[:6]
    items = [
        BatchOperation.create("accounts", {"name": "a", "accountnumber": f"{tag}-{n}"})
        for n in range(4)
    ]
    dataverse.admin("POST", "/emulator/faults/next", json={"kind": "error", "status": 503})
    async with dataverse.client() as client:
        results = await client.batch(items, chunk_size=2)
    assert [r.state for r in results] == ["failed", "failed", "not_run", "not_run"]
    assert all(r.status == 503 for r in results[:2])
    assert _numbers(dataverse, tag) == []
