"""message store: messages, steps, payload snapshots

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("business_key", sa.String(length=200), nullable=True),
        sa.Column("route", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("flow", "source_id", name="uq_messages_flow_source_id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_business_key"), ["business_key"], unique=False
        )
        batch_op.create_index("ix_messages_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "message_payloads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_payloads_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_payloads")),
    )
    with op.batch_alter_table("message_payloads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_payloads_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "message_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("backend_status", sa.Integer(), nullable=True),
        sa.Column("backend_reply", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_steps_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_steps")),
    )
    with op.batch_alter_table("message_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_steps_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_steps_message_id"))

    op.drop_table("message_steps")
    with op.batch_alter_table("message_payloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_payloads_message_id"))

    op.drop_table("message_payloads")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_created")
        batch_op.drop_index(batch_op.f("ix_messages_business_key"))

    op.drop_table("messages")
