"""The connectors' asyncio network backend, against raw HTTP servers on loopback.

Each server here is a few lines of asyncio that answers exactly as a test needs, including the
ways real servers misbehave: hanging up on an idle keep-alive connection, resetting mid-answer,
never answering, streaming more than the read buffer holds.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpcore2
import httpx2
import pytest

from d365sap.connectors.base import client_kwargs
from d365sap.connectors.network import LoopBackend, LoopStream, _ConnectionProtocol, loop_transport

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """The plain asyncio loop, and uvloop, which the service runs on."""
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return "asyncio"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Headers and body (Content-Length only) of one request; b"" at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:  # the client closed the connection
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


def answer(body: bytes, *, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n" % (len(body), connection)
    ) + body


def client(url: str, *, timeout: float = 5.0) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=url, **client_kwargs(timeout=timeout, verify=True))


def test_the_connectors_pool_runs_on_the_loop_backend() -> None:
    transport = loop_transport(verify=True, limits=httpx2.Limits(max_connections=4))
    pool = transport._pool
    assert isinstance(pool, httpcore2.AsyncConnectionPool)
    assert isinstance(pool._network_backend, LoopBackend)
    kwargs = client_kwargs(timeout=1.0, verify=True)
    assert isinstance(kwargs["transport"]._pool._network_backend, LoopBackend)


async def test_requests_reuse_one_keep_alive_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while request := await read_request(reader):
            writer.write(answer(b"echo:" + request.split(b"\r\n\r\n", 1)[1]))
            await writer.drain()

    async with serving(handler) as url, client(url) as http:
        for n in range(5):
            response = await http.post("/x", content=f"n={n}".encode())
            assert response.text == f"echo:n={n}"
    assert connections == 1


async def test_a_server_that_hung_up_on_an_idle_connection_gets_a_new_one() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b"once"))
        await writer.drain()
        writer.close()  # keep-alive promised, then the server hangs up anyway

    async with serving(handler) as url, client(url) as http:
        assert (await http.get("/a")).text == "once"
        await asyncio.sleep(0.1)  # the FIN arrives while the connection is idle
        assert (await http.get("/b")).text == "once"
    assert connections == 2


async def test_a_large_answer_streams_through_the_read_buffer_limit() -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB, above the 1 MiB high-water mark

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(payload))
        await writer.drain()

    async with serving(handler) as url, client(url) as http:
        async with http.stream("GET", "/big") as response:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received += chunk
                await asyncio.sleep(0)  # a slow consumer
        assert bytes(received) == payload


async def test_a_large_request_body_is_written_whole() -> None:
    body = b"x" * (3 * 1024 * 1024)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        writer.write(answer(str(len(request.split(b"\r\n\r\n", 1)[1])).encode()))
        await writer.drain()

    async with serving(handler) as url, client(url) as http:
        assert (await http.post("/upload", content=body)).text == str(len(body))


async def test_a_server_that_never_answers_times_out_as_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async with serving(handler) as url, client(url, timeout=0.3) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.get("/slow")


async def test_a_reset_in_the_middle_of_an_answer_is_a_transport_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serving(handler) as url, client(url) as http:
        with pytest.raises((httpx2.ReadError, httpx2.RemoteProtocolError)):
            await http.get("/reset")


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("/")


async def test_concurrent_requests_open_parallel_connections_and_all_complete() -> None:
    gate = asyncio.Event()
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while request := await read_request(reader):
            if connections >= 8:
                gate.set()
            await gate.wait()
            writer.write(answer(request.split(b" ", 2)[1]))
            await writer.drain()

    async with serving(handler) as url, client(url) as http:
        answers = await asyncio.gather(*(http.get(f"/{n}") for n in range(8)))
    assert sorted(a.text for a in answers) == sorted(f"/{n}" for n in range(8))
    assert connections == 8


class RecordingTransport:
    """Stands in for an asyncio transport and keeps every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def recording_stream() -> tuple[LoopStream, RecordingTransport, _ConnectionProtocol]:
    transport, protocol = RecordingTransport(), _ConnectionProtocol()
    return LoopStream(transport, protocol), transport, protocol  # type: ignore[arg-type]


async def test_a_requests_head_and_body_go_out_in_one_write_before_the_read() -> None:
    stream, transport, protocol = recording_stream()
    await stream.write(b"POST / HTTP/1.1\r\n\r\n")
    await stream.write(b"body")
    assert transport.writes == []
    protocol.data_received(b"HTTP/1.1 200 OK\r\n")
    assert await stream.read(1024) == b"HTTP/1.1 200 OK\r\n"
    assert transport.writes == [b"POST / HTTP/1.1\r\n\r\nbody"]


async def test_gathered_writes_go_out_on_the_loops_next_turn_without_a_read() -> None:
    stream, transport, _ = recording_stream()
    await stream.write(b"head")
    await stream.write(b"tail")
    await asyncio.sleep(0)
    assert transport.writes == [b"headtail"]


async def test_a_large_body_goes_out_as_soon_as_the_limit_is_pending() -> None:
    stream, transport, _ = recording_stream()
    await stream.write(b"head")
    await stream.write(b"x" * (64 * 1024))
    assert transport.writes == [b"head" + b"x" * (64 * 1024)]
    await stream.write(b"rest")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [b"rest"]


async def test_writes_pending_when_the_connection_closed_are_dropped() -> None:
    stream, transport, _ = recording_stream()
    await stream.write(b"head")
    transport.closing = True
    await asyncio.sleep(0)
    assert transport.writes == []
    with pytest.raises(httpcore2.WriteError):
        await stream.write(b"more")
