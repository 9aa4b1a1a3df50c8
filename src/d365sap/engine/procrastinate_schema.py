"""Installing procrastinate's schema next to the message store's tables.

The store's tables belong to Alembic and procrastinate's (``procrastinate_*`` tables, types and
functions) to procrastinate: neither migration set touches the other's objects, so both live in
one database and one transaction can write a message row and defer its job. Procrastinate's
``schema.sql`` is not idempotent, so it is applied only when its jobs table is missing, under a
transaction-level advisory lock: the service and several ``d365sap worker`` processes starting
together install it exactly once.
"""

from __future__ import annotations

import psycopg
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

# An arbitrary, fixed advisory lock key: every d365sap process agrees on it.
SCHEMA_LOCK_KEY = 0x0D365_5A9_0001
# What this code calls in procrastinate's schema; missing ones mean an older schema.
REQUIRED_FUNCTIONS = (
    "procrastinate_defer_jobs_v1",
    "procrastinate_fetch_job_v2",
    "procrastinate_retry_job_v2",
    "procrastinate_finish_job_v1",
    "procrastinate_update_heartbeat_v1",
    "procrastinate_prune_stalled_workers_v1",
)


class SchemaOutdatedError(RuntimeError):
    """Procrastinate's tables exist, but from a version older than the installed library."""


def conninfo_from_url(url: str) -> str:
    """A libpq connection string (``postgresql://…``) from the store's SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("the procrastinate runtime needs a postgresql store URL")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def install_schema(conninfo: str) -> bool:
    """Apply procrastinate's schema unless present; ``True`` when this call installed it.

    Raises :class:`SchemaOutdatedError` when an older procrastinate schema is found: its own
    migrations (``procrastinate schema --migrations-path``) must be applied first.
    """
    connection = await psycopg.AsyncConnection.connect(conninfo)
    async with connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
        row = await cursor.fetchone()
        if row is None or row[0] is None:
            # Without parameters psycopg sends the whole script in one simple query.
            await connection.execute(SchemaManager.get_schema().encode("utf-8"))
            return True
        missing = await _missing_functions(connection)
        if missing:
            raise SchemaOutdatedError(
                "procrastinate's schema in this database is older than the installed "
                f"procrastinate (missing {', '.join(missing)}); apply its migrations"
            )
    return False


async def _missing_functions(connection: psycopg.AsyncConnection[tuple[object, ...]]) -> list[str]:
    cursor = await connection.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regproc(name) IS NULL",
        (list(REQUIRED_FUNCTIONS),),
    )
    return [str(row[0]) for row in await cursor.fetchall()]
