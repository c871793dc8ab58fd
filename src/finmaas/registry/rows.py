"""Rows of the registry's tables mapped to the records it returns; no queries.

Timestamps come back from SQLite without a zone; every record carries them in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.engine import RowMapping

from finmaas.registry.records import (
    DEFAULT_PROTECTED_ALIASES,
    Alias,
    AliasEvent,
    Approval,
    Model,
    ModelVersion,
    MonitoringPolicy,
)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def model_record(row: RowMapping) -> Model:
    return Model(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner=row["owner"],
        task=row["task"],
        tags=dict(row["tags"] or {}),
        status=row["status"],
        latest_version=row["latest_version"],
        created_by=row["created_by"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        tenant=row["tenant"],
        risk_tier=row["risk_tier"],
        intended_use=row["intended_use"],
        validation_status=row["validation_status"],
        next_review=row["next_review"],
        protected_aliases=(
            DEFAULT_PROTECTED_ALIASES
            if row["protected_aliases"] is None
            else tuple(row["protected_aliases"])
        ),
        max_concurrency=row["max_concurrency"],
        monitoring=MonitoringPolicy.from_json(row["monitoring"]),
    )


def version_record(name: str, row: RowMapping, alias_names: Sequence[str]) -> ModelVersion:
    return ModelVersion(
        model=name,
        version=row["version"],
        status=row["status"],
        artifact_digest=row["artifact_digest"],
        artifact_format=row["artifact_format"],
        artifact_size=row["artifact_size"],
        signature_json=dict(row["signature"]),
        metrics=dict(row["metrics"] or {}),
        params=dict(row["params"] or {}),
        tags=dict(row["tags"] or {}),
        parent_version=row["parent_version"],
        lineage=dict(row["lineage"] or {}),
        reference_profile=row["reference_profile"],
        explanation=row["explanation"],
        model_card=row["model_card"],
        created_by=row["created_by"],
        created_at=utc(row["created_at"]),
        archived_at=utc(row["archived_at"]) if row["archived_at"] is not None else None,
        artifact_purged_at=(
            utc(row["artifact_purged_at"]) if row["artifact_purged_at"] is not None else None
        ),
        aliases=tuple(alias_names),
    )


def alias_record(name: str, row: RowMapping) -> Alias:
    return Alias(
        model=name,
        name=row["name"],
        version=row["version"],
        updated_by=row["updated_by"],
        updated_at=utc(row["updated_at"]),
    )


def alias_event_record(name: str, row: RowMapping) -> AliasEvent:
    return AliasEvent(
        model=name,
        alias=row["alias"],
        action=row["action"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        actor=row["actor"],
        at=utc(row["at"]),
    )


def approval_record(name: str, row: RowMapping) -> Approval:
    return Approval(
        name,
        row["version"],
        row["decision"],
        row["note"],
        row["actor"],
        utc(row["at"]),
        tenant=row["tenant"],
        role=row["role"],
    )
