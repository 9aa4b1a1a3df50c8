"""Database engine creation and schema migration.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is chosen by URL. The schema is
owned by Alembic: :func:`migrate` brings any database to the newest revision at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
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
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


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
