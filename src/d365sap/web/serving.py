"""Run ASGI apps on loopback sockets inside the current process.

The demo, ``d365sap emulators`` and the end-to-end tests all need several uvicorn servers side by
side (emulators and the service) with ports that may be chosen by the OS. :class:`BackgroundServer`
runs one uvicorn server in a daemon thread and reports the port it actually bound; given a
certificate and key it serves HTTPS (the Dataverse emulator, which msal reaches only over TLS).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn


class BackgroundServer:
    """One uvicorn server in a background thread; ``port=0`` lets the OS pick a free port."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        name: str = "server",
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.scheme = "https" if ssl_certfile is not None else "http"
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:40123``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        """Start serving and wait until the socket is bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.01)
        for server in self._server.servers:
            for sock in server.sockets:
                self.port = int(sock.getsockname()[1])
                return self
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serving(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "server"
) -> Iterator[BackgroundServer]:
    """Context manager form of :class:`BackgroundServer`."""
    server = BackgroundServer(app, host=host, port=port, name=name)
    server.start()
    try:
        yield server
    finally:
        server.stop()
