"""Table definitions of the metadata store (SQLAlchemy Core).

Change them only together with a new Alembic revision under ``migrations/``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Access and model inventory (revision 0002).
    sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
    sa.Column("risk_tier", sa.Integer, nullable=True),
    sa.Column("intended_use", sa.Text, nullable=False, server_default=""),
    sa.Column("validation_status", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("next_review", sa.Date, nullable=True),
    sa.Column("protected_aliases", sa.JSON, nullable=True),
    sa.Column("max_concurrency", sa.Integer, nullable=True),
    sa.Column("monitoring", sa.JSON, nullable=True),  # revision 0005
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("artifact_digest", sa.String(64), nullable=False, index=True),
    sa.Column("artifact_format", sa.String(32), nullable=False),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("reference_profile", sa.JSON, nullable=True),
    sa.Column("explanation", sa.JSON, nullable=True),  # revision 0003
    sa.Column("model_card", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("archived_at", Timestamp, nullable=True),
    sa.Column("artifact_purged_at", Timestamp, nullable=True),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(32), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_alias_events_model_alias", "model_id", "alias", "id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    # The validator's tenant and role (revision 0007); empty: unknown, does not count.
    sa.Column("tenant", sa.String(64), nullable=True),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Index("ix_approvals_model_version", "model_id", "version", "id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("grants", sa.JSON, nullable=False),
    sa.Column("requests_per_minute", sa.Integer, nullable=True),
    sa.Column("rows_per_minute", sa.Integer, nullable=True),
    sa.Column("monthly_quota", sa.BigInteger, nullable=True),
    # Token limits for generative models (revision 0008).
    sa.Column("tokens_per_minute", sa.Integer, nullable=True),
    sa.Column("monthly_token_quota", sa.BigInteger, nullable=True),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("replaced_by", sa.String(24), nullable=True),
    sa.Column("changed_at", Timestamp, nullable=False, index=True),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("key_id", sa.String(24), primary_key=True),
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("latency_us", sa.BigInteger, nullable=False),
    sa.Index("ix_usage_tenant_day", "tenant", "day"),
)

drift_counts = sa.Table(  # revision 0004
    "drift_counts",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("bin", sa.Integer, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

decisions = sa.Table(  # revision 0005
    "decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("recorded_at", Timestamp, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("subject", sa.String(64), nullable=True, index=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("alias", sa.String(64), nullable=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("decision", sa.String(200), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
)

jobs = sa.Table(  # revision 0006
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("template", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("heartbeat_at", Timestamp, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("progress", sa.JSON, nullable=True),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Column("versions", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
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
    sa.Index("ix_audit_log_action", "action", "id"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)
