"""Carrying out injected faults on the wire: latency, answers, held requests, dropped connections.

Both emulators put one :class:`FaultMiddleware` (a subclass naming how their system answers) in
front of their routes. A fault is decided by :class:`~d365sap.emulators.faults.FaultController`;
this module makes it happen:

- error, lock, throttling: the middleware answers itself, in the emulator's format, and the
  request never reaches the emulated system;
- timeout: the request is held without an answer, then answered 504 or dropped;
- drop: the TCP connection is reset before any byte of an answer, so the client sees a transport
  error, never a status;
- drop after commit: the request is processed normally (a write lands in the emulator's state),
  the answer is swallowed and the connection reset: the "acknowledgement lost" case;
- CSRF expiry and ETag change are done by the S/4 emulator itself; the middleware only marks
  the request (:data:`FAULT_KEY`).

ASGI has no message to abort a connection, and an app that raises before answering gets a 500
from Starlette and uvicorn. So :class:`FaultAwareFastAPI` keeps the server's own ``send`` in the
scope, and :func:`drop_connection` reaches the asyncio transport behind it (uvicorn's request
cycle) to reset the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from d365sap.emulators.faults import Fault, FaultController, FaultKind, RequestFacts

RAW_SEND_KEY = "d365sap.faults.raw_send"
FAULT_KEY = "d365sap.faults.kind"
"""Scope key of a fault the emulated system carries out itself (CSRF expiry, ETag change)."""
_BODY_KEPT = 256 * 1024
_DISCONNECT_WAIT_SECONDS = 2.0
IN_APP_KINDS = frozenset({FaultKind.CSRF_EXPIRY, FaultKind.ETAG_CHANGE})


class ConnectionDroppedError(ConnectionError):
    """Raised instead of a reset when the server gives no access to its transport.

    Under uvicorn this never happens; under an in-process test client the exception reaches
    the test, which is the nearest thing to a dropped connection there.
    """


class FaultAwareFastAPI(FastAPI):
    """FastAPI that remembers the server's ``send`` of each request in the scope.

    Every middleware of the app runs inside Starlette's error middleware, whose ``send`` wrapper
    hides the server's request cycle, and with it the transport a dropped connection needs.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Note the raw ``send``, then run the app as usual."""
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


@dataclass(frozen=True)
class Reply:
    """An answer the middleware sends on the emulated system's behalf."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _transport(scope: Scope) -> asyncio.Transport | None:
    raw_send = scope.get(RAW_SEND_KEY)
    cycle = getattr(raw_send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # uvloop's transports are not asyncio.Transport subclasses: go by what the reset needs.
    if callable(getattr(transport, "abort", None)) and callable(
        getattr(transport, "get_extra_info", None)
    ):
        return cast(asyncio.Transport, transport)
    return None


async def wait_for_disconnect(receive: Receive, timeout: float) -> bool:
    """Read (and discard) request messages until the client is gone; False on timeout."""

    async def until_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(until_gone(), timeout)
    except TimeoutError:
        return False
    return True


async def drop_connection(scope: Scope, receive: Receive) -> None:
    """Reset the client's TCP connection without a byte of an answer.

    ``SO_LINGER`` 0 makes the close an RST (what a crashed back end or a load balancer killing
    the connection looks like). Waiting for the disconnect afterwards lets the server see the
    connection is gone, so it does not log "returned without starting response" and try a 500.
    """
    transport = _transport(scope)
    if transport is None:
        raise ConnectionDroppedError("connection dropped by fault injection")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await wait_for_disconnect(receive, _DISCONNECT_WAIT_SECONDS)


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body (its first 256 KiB) and whether the client is still connected."""
    kept = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(kept), False
        if len(kept) < _BODY_KEPT:
            kept += message.get("body", b"")[: _BODY_KEPT - len(kept)]
        if not message.get("more_body", False):
            return bytes(kept), True


async def send_reply(send: Send, reply: Reply) -> None:
    """Send ``reply`` with a Content-Length."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def header_map(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (the last one wins)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


@dataclass(frozen=True)
class FaultedRequest:
    """What a reply may quote: path, method and the start of the body."""

    path: str
    method: str
    body: bytes


class FaultMiddleware(ABC):
    """Pure ASGI middleware injecting the faults its controller decides.

    Subclasses say what a request is (:meth:`describe`) and how their system answers a fault
    (:meth:`reply`); everything else, from latency to resets, is the same for every emulator.
    """

    def __init__(self, app: ASGIApp, controller: FaultController) -> None:
        self.app = app
        self.controller = controller

    @abstractmethod
    def describe(self, scope: Scope) -> RequestFacts:
        """The facts the fault decision needs about this request."""

    @abstractmethod
    def reply(self, fault: Fault, request: FaultedRequest) -> Reply:
        """The emulated system's answer for an error, lock, throttling or gateway timeout."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decide, wait the latency, then pass on, answer, hold or drop."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = self.describe(scope)
        decision = self.controller.decide(facts)
        if decision is None:
            await self.app(scope, receive, send)
            return
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        fault = decision.fault
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind in IN_APP_KINDS:
            await self.app({**scope, FAULT_KEY: fault.kind}, receive, send)
        elif fault.kind is FaultKind.DROP_AFTER_COMMIT:
            await self._commit_then_drop(scope, receive)
        else:
            await self._instead_of_app(fault, facts, scope, receive, send)

    async def _commit_then_drop(self, scope: Scope, receive: Receive) -> None:
        async def swallow(message: Message) -> None:
            """The answer is produced and then lost: nothing of it reaches the client."""

        await self.app(scope, receive, swallow)
        await drop_connection(scope, receive)

    async def _instead_of_app(
        self, fault: Fault, facts: RequestFacts, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body, connected = await read_body(receive)
        if not connected:
            return
        if fault.kind is FaultKind.DROP:
            await drop_connection(scope, receive)
            return
        if fault.kind is FaultKind.TIMEOUT:
            if await wait_for_disconnect(receive, fault.timeout_seconds):
                return  # the client gave up first, as intended
            if fault.timeout_action == "drop":
                await drop_connection(scope, receive)
                return
        await send_reply(send, self.reply(fault, FaultedRequest(facts.path, facts.method, body)))
