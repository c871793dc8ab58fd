"""Token limits on API keys, for generative models (issue 22).

``tokens_per_minute`` (prompt + completion tokens, a token bucket holding a
minute's worth) and ``monthly_token_quota`` (tokens per calendar month, UTC).
Both empty on existing keys: no token limit until an admin issues a key with one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("tokens_per_minute", sa.Integer, nullable=True))
        batch.add_column(sa.Column("monthly_token_quota", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("monthly_token_quota")
        batch.drop_column("tokens_per_minute")
