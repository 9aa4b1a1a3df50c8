"""The connection pool procrastinate's own queries run on, in every worker process.

procrastinate's connector opens a psycopg pool whose connections start a transaction per query
and are tested with an extra round trip at every checkout: three round trips around each
heartbeat, abort poll, stalled-job sweep or job status update that is one statement anyway.
Workers here use connections in autocommit, tested only when they sat idle for
:data:`~d365sap.engine.db.IDLE_PING_SECONDS` (a connection in steady use was just seen to
work; one idle for a while may have been dropped by the server or a restart), the same policy
as the store's own pool.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from procrastinate import PsycopgConnector
from psycopg_pool import AsyncConnectionPool

from d365sap.engine.db import IDLE_PING_SECONDS


class _IdleTestedPool(AsyncConnectionPool):
    """Autocommit connections, tested at checkout only after they were idle for a while.

    Autocommit is set when a connection is made (``configure``), not through the pool's
    connection arguments: procrastinate opens its LISTEN connection with those arguments and
    its own ``autocommit=True``, which must not be given twice.
    """

    def __init__(self, *args: Any, **options: Any) -> None:
        options.pop("check", None)
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(
            *args,
            check=self._check_if_idle,
            configure=self._autocommit,
            reset=self._note_return,
            **options,
        )

    @staticmethod
    async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.set_autocommit(True)

    async def _note_return(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._returned[connection] = time.monotonic()

    async def _check_if_idle(self, connection: psycopg.AsyncConnection[Any]) -> None:
        returned = self._returned.get(connection)
        if returned is not None and time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        await AsyncConnectionPool.check_connection(connection)


def worker_connector(conninfo: str, *, max_size: int = 8) -> PsycopgConnector:
    """A procrastinate connector on autocommit connections, tested after idling."""
    return PsycopgConnector(
        conninfo=conninfo,
        min_size=1,
        max_size=max_size,
        pool_factory=_IdleTestedPool,
    )
