"""Database engine creation and schema migration.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is chosen by URL. The schema is
owned by Alembic: :func:`migrate` brings any database to the newest revision at start-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 16 MB of page cache instead of SQLite's 2 MB: a store of tens of thousands of messages
    # keeps its index pages in memory instead of reading them back through the file system.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.close()


def insert_for(dialect: str) -> Any:
    """The ``INSERT`` construct with ``ON CONFLICT`` of ``dialect`` (PostgreSQL, else SQLite)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


POOL_SIZE = 10
POOL_OVERFLOW = 10
# A pooled connection idle longer than this is tested before use (the server may have restarted
# or dropped it meanwhile); one in steady use is not, which saves a round trip per transaction.
IDLE_PING_SECONDS = 5.0


def ping_after_idle(engine: Engine) -> None:
    """Test a pooled connection before use when it sat idle for :data:`IDLE_PING_SECONDS`.

    SQLAlchemy's ``pool_pre_ping`` tests every checkout: one ``SELECT 1`` round trip per store
    transaction. A connection that fails the test is replaced by the pool, as with pre-ping.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection failed its test: {error}") from error


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; creates the folder of a SQLite file if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A worker runs dozens of messages at once, each taking a connection for its short store
    # transactions: SQLAlchemy's default pool (5 + 10) made them queue for connections. Four
    # workers at 20 stay well under PostgreSQL's default of 100 connections.
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    ping_after_idle(engine)
    return engine


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 72_65_01  # advisory lock id: one migrating process at a time


def migrate(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest schema revision.

    On PostgreSQL the service and its workers may start together: a session advisory lock lets
    one of them migrate while the others wait, then find nothing left to do.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as guard:
        guard.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            guard.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK})
            guard.commit()
