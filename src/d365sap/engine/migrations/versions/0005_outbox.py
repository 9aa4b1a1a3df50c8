"""Outbox: requests packed from several messages (bulk messages), written before they are sent.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_batches")),
    )
    op.create_table(
        "outbox_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target_ref", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["outbox_batches.id"],
            name=op.f("fk_outbox_items_batch_id_outbox_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_items")),
        sa.UniqueConstraint("batch_id", "position", name="uq_outbox_items_position"),
    )
    with op.batch_alter_table("outbox_items", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_items_batch_id", ["batch_id"], unique=False)
        batch_op.create_index("ix_outbox_items_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_outbox_items_reference", ["reference"], unique=False)
        batch_op.create_index("ix_outbox_items_state_sent", ["state", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_items_state_sent")
        batch_op.drop_index("ix_outbox_items_reference")
        batch_op.drop_index("ix_outbox_items_message_id")
        batch_op.drop_index("ix_outbox_items_batch_id")
    op.drop_table("outbox_items")
    op.drop_table("outbox_batches")
