"""Sync state: checkpoints and last-seen source versions, the shared throttle, the key registry.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_checkpoints",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("next_link", sa.Text(), nullable=True),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("pass_id", sa.String(length=36), nullable=True),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("emitted", sa.BigInteger(), nullable=False),
        sa.Column("emitted_total", sa.BigInteger(), nullable=False),
        sa.Column("passes", sa.BigInteger(), nullable=False),
        sa.Column("alarm", sa.Text(), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_checkpoints")),
    )
    op.create_table(
        "source_versions",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("row_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("pass_id", sa.String(length=36), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "row_id", name=op.f("pk_source_versions")),
    )
    with op.batch_alter_table("source_versions", schema=None) as batch_op:
        batch_op.create_index("ix_source_versions_source_pass", ["source", "pass_id"], unique=False)

    op.create_table(
        "throttles",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_throttles")),
    )
    op.create_table(
        "throttle_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_grants")),
    )
    with op.batch_alter_table("throttle_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_throttle_grants_name_granted", ["name", "granted_at"], unique=False
        )

    op.create_table(
        "key_registry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_system", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("detail_id", sa.String(length=64), nullable=True),
        sa.Column("sales_org", sa.String(length=10), nullable=False),
        sa.Column("distribution_channel", sa.String(length=10), nullable=False),
        sa.Column("division", sa.String(length=10), nullable=False),
        sa.Column("business_partner", sa.String(length=20), nullable=True),
        sa.Column("customer", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reserved_by", sa.String(length=64), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_registry")),
        sa.UniqueConstraint(
            "target_system",
            "account_id",
            "sales_org",
            "distribution_channel",
            "division",
            name="uq_key_registry_record",
        ),
        sa.UniqueConstraint("target_system", "detail_id", name="uq_key_registry_detail"),
        sa.UniqueConstraint(
            "target_system",
            "customer",
            "sales_org",
            "distribution_channel",
            "division",
            name="uq_key_registry_customer",
        ),
    )
    with op.batch_alter_table("key_registry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_key_registry_partner", ["target_system", "business_partner"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("key_registry", schema=None) as batch_op:
        batch_op.drop_index("ix_key_registry_partner")
    op.drop_table("key_registry")
    with op.batch_alter_table("throttle_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_grants_name_granted")
    op.drop_table("throttle_grants")
    op.drop_table("throttles")
    with op.batch_alter_table("source_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_source_versions_source_pass")
    op.drop_table("source_versions")
    op.drop_table("sync_checkpoints")
