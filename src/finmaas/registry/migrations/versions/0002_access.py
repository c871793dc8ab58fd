"""API keys, approvals, usage, the hash-chained audit log, model inventory fields.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column("tenant", sa.String(64), nullable=False, server_default="default")
        )
        batch.add_column(sa.Column("risk_tier", sa.Integer, nullable=True))
        batch.add_column(sa.Column("intended_use", sa.Text, nullable=False, server_default=""))
        batch.add_column(
            sa.Column("validation_status", sa.String(16), nullable=False, server_default="draft")
        )
        batch.add_column(sa.Column("next_review", sa.Date, nullable=True))
        batch.add_column(sa.Column("protected_aliases", sa.JSON, nullable=True))
        batch.add_column(sa.Column("max_concurrency", sa.Integer, nullable=True))
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_approvals_model_id_models"),
    )
    op.create_index("ix_approvals_model_version", "approvals", ["model_id", "version", "id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("grants", sa.JSON, nullable=False),
        sa.Column("requests_per_minute", sa.Integer, nullable=True),
        sa.Column("rows_per_minute", sa.Integer, nullable=True),
        sa.Column("monthly_quota", sa.BigInteger, nullable=True),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("replaced_by", sa.String(24), nullable=True),
        sa.Column("changed_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_changed_at", "api_keys", ["changed_at"])
    op.create_table(
        "usage",
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("latency_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key_id", "model", "version", "day", name="pk_usage"),
    )
    op.create_index("ix_usage_tenant_day", "usage", ["tenant", "day"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_action", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_usage_tenant_day", "usage")
    op.drop_table("usage")
    op.drop_index("ix_api_keys_changed_at", "api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_approvals_model_version", "approvals")
    op.drop_table("approvals")
    with op.batch_alter_table("models") as batch:
        for column in (
            "max_concurrency",
            "protected_aliases",
            "next_review",
            "validation_status",
            "intended_use",
            "risk_tier",
            "tenant",
        ):
            batch.drop_column(column)
