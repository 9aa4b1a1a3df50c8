"""Sockets for the connectors' connection pools, straight on the asyncio event loop.

httpx2 reaches the network through httpcore2, whose default async backend goes through anyio.
Measured on this project's load, that costs a lot of CPU in one place: before each request the
pool asks every idle connection whether its server hung up, and the anyio stream answers by
rebuilding its attribute table and polling the socket. With the dozens of keep-alive
connections a busy worker holds, that check cost more than the request itself.

:class:`LoopBackend` keeps each connection as an :class:`asyncio.Protocol`: the event loop
already reads every socket, so whether a server hung up (or sent bytes nobody asked for) is a
flag and a buffer length, not a system call. Reads and writes wait on futures with
:func:`asyncio.timeout`; TLS is the loop's own ``start_tls``. Errors are httpcore2's, so httpx2
maps them to its exceptions exactly as with the default backend.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore2
import httpx2
from httpcore2 import SOCKET_OPTION

_READ_HIGH_WATER = 1024 * 1024
"""Stop reading the socket while this much is buffered and not yet consumed."""
_COALESCE_LIMIT = 64 * 1024
"""Send gathered writes at once when this much is pending (a large body goes out in pieces)."""


class _ConnectionProtocol(asyncio.Protocol):
    """Buffers what the server sends and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _wake(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def wait_readable(self) -> None:
        """Until bytes are buffered or the connection ended."""
        self._reader = asyncio.get_running_loop().create_future()
        try:
            await self._reader
        finally:
            self._reader = None

    @property
    def writing_paused(self) -> bool:
        """The transport's write buffer is above its high-water mark."""
        return self._drained is not None

    async def wait_drained(self) -> None:
        """Until the transport's write buffer is below its high-water mark."""
        if self._drained is not None:
            await self._drained

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the buffer; resumes reading once it has room again."""
        if len(self.buffer) <= max_bytes:
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:max_bytes])
            del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) <= _READ_HIGH_WATER // 2:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return data


class LoopStream(httpcore2.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore2 sees it.

    httpcore2 writes a request's head and its body separately, one after the other without
    waiting in between. Each write to a loopback or LAN socket is a system call that also runs
    the receiver's network stack, so the stream gathers the writes of one request and sends
    them together: before the next read, on the loop's next turn, or once
    :data:`_COALESCE_LIMIT` bytes are pending, whichever comes first.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _ConnectionProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes] = []
        self._pending_size = 0

    def _flush(self) -> None:
        """Hand the gathered writes to the transport (dropped if it closed meanwhile)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        protocol = self._protocol
        if not protocol.buffer and not protocol.closed:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.wait_readable()
            except TimeoutError as exc:
                raise httpcore2.ReadTimeout("timed out reading from the server") from exc
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore2.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore2.WriteError("the connection is closed")
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(buffer)
        self._pending_size += len(buffer)
        if self._pending_size >= _COALESCE_LIMIT:
            self._flush()
        if self._protocol.writing_paused:
            try:
                async with asyncio.timeout(timeout):
                    await self._protocol.wait_drained()
            except TimeoutError as exc:
                raise httpcore2.WriteTimeout("timed out writing to the server") from exc
        if self._protocol.error is not None:
            raise httpcore2.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._pending = []
        self._pending_size = 0
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self._flush()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore2.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore2.ConnectError(str(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore2.ConnectError("the server closed the connection during TLS")
        return LoopStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle connection with bytes or an end waiting: the server hung up.
            return bool(self._protocol.buffer) or self._protocol.closed
        key = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return self._transport.get_extra_info(key) if key else None


class LoopBackend(httpcore2.AsyncNetworkBackend):
    """Opens :class:`LoopStream` connections on the running asyncio loop."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _ConnectionProtocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return LoopStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_ConnectionProtocol, path)
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"timed out connecting to {path}") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        return LoopStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def loop_transport(
    *,
    verify: ssl.SSLContext | str | bool = True,
    cert: tuple[str, str] | None = None,
    limits: httpx2.Limits,
) -> httpx2.AsyncHTTPTransport:
    """httpx2's own transport with its connection pool on :class:`LoopBackend`.

    httpx2 builds its httpcore2 pool itself and has no parameter for the network backend, so
    the pool is rebuilt here with the same settings; a test checks the attribute still exists.
    """
    transport = httpx2.AsyncHTTPTransport(verify=verify, cert=cert, limits=limits)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(verify=verify, cert=cert),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=LoopBackend(),
    )
    return transport
