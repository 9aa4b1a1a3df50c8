"""Alembic environment: runs migrations on the engine handed over by ``d365sap.engine.db``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from d365sap.engine import outbox_tables  # noqa: F401  (its tables join Base.metadata)
from d365sap.engine.tables import Base

engine: Engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
