"""Embedded queue: each job knows whether it heads its lock key, so claiming reads an index.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_jobs_ready", ["blocked", "status", "id"], unique=False)
    # Jobs queued before the upgrade: every one but the oldest of its key waits.
    op.execute(
        "UPDATE jobs SET blocked = TRUE WHERE id NOT IN "
        "(SELECT min(id) FROM jobs GROUP BY lock_key)"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_ready")
        batch_op.drop_column("blocked")
