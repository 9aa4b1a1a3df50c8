"""Delivery: arrival order, payload versions, the embedded job queue, last-applied versions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "record_versions",
        sa.Column("record_key", sa.String(length=300), nullable=False),
        sa.Column("message_seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_key", name=op.f("pk_record_versions")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False, server_default="default"),
        sa.Column("lock_key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_jobs_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("message_id", name=op.f("uq_jobs_message_id")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_lock_key"), ["lock_key"], unique=False)

    op.create_table(
        "message_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_versions_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_versions")),
        sa.UniqueConstraint("message_id", "version", name="uq_message_versions_version"),
    )
    with op.batch_alter_table("message_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_versions_message_id"), ["message_id"], unique=False
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("payload_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("queue", sa.String(length=32), nullable=False, server_default="default")
        )
        batch_op.add_column(sa.Column("lock_key", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_messages_flow_lock_key_seq", ["flow", "lock_key", "seq"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_seq"), ["seq"], unique=False)

    # Existing messages keep their payload as version 1; numbering starts after them.
    op.execute(
        "INSERT INTO message_versions"
        " (message_id, version, content_type, payload, comment, created_at) "
        "SELECT id, 1, content_type, payload, 'as received', created_at FROM messages"
    )
    op.execute("INSERT INTO counters (name, value) VALUES ('message_seq', 0)")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_seq"))
        batch_op.drop_index("ix_messages_flow_lock_key_seq")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lock_key")
        batch_op.drop_column("queue")
        batch_op.drop_column("version")
        batch_op.drop_column("payload_hash")
        batch_op.drop_column("seq")

    with op.batch_alter_table("message_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_versions_message_id"))

    op.drop_table("message_versions")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_lock_key"))

    op.drop_table("jobs")
    op.drop_table("record_versions")
    op.drop_table("counters")
