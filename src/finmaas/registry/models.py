"""Models: listing, creating, changing their inventory fields, and archiving them.

A model is created by :func:`create_model` or by its first version
(:func:`finmaas.registry.versions.publish_version`); both go through
:func:`insert_model`. Archiving a model archives its versions and deletes its
aliases; its artifacts stay until they are purged.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.errors import Conflict, Invalid
from finmaas.registry import fields
from finmaas.registry.aliases import delete_all_aliases
from finmaas.registry.audit import append_entry
from finmaas.registry.clock import Clock
from finmaas.registry.lookups import model_query, model_row
from finmaas.registry.names import check_alias_name, check_tenant
from finmaas.registry.records import (
    DEFAULT_PROTECTED_ALIASES,
    VALIDATION_STATUSES,
    Model,
    ModelUpdate,
    MonitoringPolicy,
    NewModel,
)
from finmaas.registry.rows import model_record
from finmaas.registry.tables import model_versions, models

_MONITORING_FIELDS = ("drift_watch", "drift_alert", "log_sample_rate", "decisions")
"""The fields of a :class:`ModelUpdate` that change the model's :class:`MonitoringPolicy`."""


def list_models(
    conn: Connection, *, include_archived: bool, review_due_on: date | None
) -> list[Model]:
    query = sa.select(models).order_by(models.c.name)
    if not include_archived:
        query = query.where(models.c.status == "active")
    if review_due_on is not None:
        query = query.where(models.c.next_review <= review_due_on)
    return [model_record(row) for row in conn.execute(query).mappings()]


def get_model(conn: Connection, name: str) -> Model:
    return model_record(model_row(conn, name))


def create_model(
    conn: Connection, name: str, task: str, who: Actor, spec: NewModel, *, clock: Clock
) -> Model:
    if conn.execute(model_query(name)).first() is not None:
        raise Conflict(f"model {name!r} already exists")
    return model_record(insert_model(conn, name, task, who, spec, clock=clock))


def insert_model(
    conn: Connection, name: str, task: str, actor: Actor, spec: NewModel, *, clock: Clock
) -> RowMapping:
    now = clock()
    if spec.risk_tier is not None and spec.risk_tier not in (1, 2, 3):
        raise Invalid(f"risk tier must be 1, 2 or 3, got {spec.risk_tier}")
    conn.execute(
        sa.insert(models).values(
            name=name,
            description=fields.check_text("description", spec.description),
            owner=fields.check_text("owner", spec.owner, fields.MAX_ACTOR, one_line=True),
            task=task,
            tags=fields.check_tags(spec.tags),
            status="active",
            latest_version=0,
            created_by=fields.check_text("actor", actor.name, fields.MAX_ACTOR, one_line=True),
            created_at=now,
            updated_at=now,
            tenant=check_tenant(spec.tenant),
            risk_tier=spec.risk_tier,
            intended_use=fields.check_text("intended use", spec.intended_use),
            validation_status="draft",
            next_review=spec.next_review,
        )
    )
    append_entry(
        conn,
        actor,
        "model.create",
        name,
        tenant=spec.tenant,
        after={"task": task, "tenant": spec.tenant, "owner": spec.owner},
        at=clock(),
    )
    return model_row(conn, name)


def archive_model(conn: Connection, name: str, who: Actor, *, clock: Clock) -> Model:
    now = clock()
    row = model_row(conn, name, lock=True)
    if row["status"] == "archived":
        raise Conflict(f"model {name!r} is already archived")
    delete_all_aliases(conn, row, who, clock=clock)
    conn.execute(
        sa.update(model_versions)
        .where(model_versions.c.model_id == row["id"], model_versions.c.status == "active")
        .values(status="archived", archived_at=now)
    )
    conn.execute(
        sa.update(models).where(models.c.id == row["id"]).values(status="archived", updated_at=now)
    )
    append_entry(
        conn,
        who,
        "model.archive",
        name,
        tenant=row["tenant"],
        before={"status": row["status"]},
        after={"status": "archived"},
        at=clock(),
    )
    return model_record(model_row(conn, name))


def requested_changes(update: ModelUpdate) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked column changes of ``update`` and its monitoring policy changes.

    Raises :class:`Invalid` for a bad value, or when ``update`` changes nothing.
    """
    changes = _column_changes(update)
    monitoring = {
        key: value for key in _MONITORING_FIELDS if (value := getattr(update, key)) is not None
    }
    if not changes and not monitoring:
        raise Invalid("nothing to change: give at least one field")
    return changes, monitoring


def update_model(
    conn: Connection,
    name: str,
    changes: dict[str, Any],
    monitoring: dict[str, Any],
    who: Actor,
    *,
    clock: Clock,
) -> Model:
    """Apply :func:`requested_changes` to the model, auditing each field's old and new value."""
    row = model_row(conn, name, lock=True)
    if monitoring:
        policy = MonitoringPolicy.from_json(row["monitoring"]).to_json()
        changes = {**changes, "monitoring": _check_monitoring({**policy, **monitoring})}
    before = {key: _jsonable(row[key]) for key in changes}
    conn.execute(
        sa.update(models).where(models.c.id == row["id"]).values(**changes, updated_at=clock())
    )
    after = {key: _jsonable(value) for key, value in changes.items()}
    append_entry(
        conn,
        who,
        "model.update",
        name,
        tenant=row["tenant"],
        before=before,
        after=after,
        at=clock(),
    )
    return model_record(model_row(conn, name))


def _column_changes(update: ModelUpdate) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if update.description is not None:
        changes["description"] = fields.check_text("description", update.description)
    if update.owner is not None:
        changes["owner"] = fields.check_text("owner", update.owner, fields.MAX_ACTOR, one_line=True)
    if update.risk_tier is not None:
        if update.risk_tier not in (1, 2, 3):
            raise Invalid(f"risk tier must be 1, 2 or 3, got {update.risk_tier}")
        changes["risk_tier"] = update.risk_tier
    if update.intended_use is not None:
        changes["intended_use"] = fields.check_text("intended use", update.intended_use)
    if update.validation_status is not None:
        if update.validation_status not in VALIDATION_STATUSES:
            raise Invalid(
                f"validation status must be one of {', '.join(VALIDATION_STATUSES)}, "
                f"got {update.validation_status!r}"
            )
        changes["validation_status"] = update.validation_status
    if update.next_review is not None:
        changes["next_review"] = update.next_review
    if update.protected_aliases is not None:
        # production is always protected; a model may protect more aliases.
        changes["protected_aliases"] = sorted(
            {*DEFAULT_PROTECTED_ALIASES, *(check_alias_name(a) for a in update.protected_aliases)}
        )
    if update.max_concurrency is not None:
        if not 0 <= update.max_concurrency <= 1_000_000:
            raise Invalid(
                f"max concurrency must be between 0 (no cap) and 1000000, "
                f"got {update.max_concurrency}"
            )
        changes["max_concurrency"] = update.max_concurrency or None
    return changes


def _check_monitoring(policy: dict[str, Any]) -> dict[str, Any]:
    watch, alert = policy["drift_watch"], policy["drift_alert"]
    if not 0 < watch < alert <= 10:
        raise Invalid(
            f"drift bands need 0 < watch < alert ≤ 10, got watch {watch} and alert {alert}"
        )
    if not 0 <= policy["log_sample_rate"] <= 1:
        raise Invalid(f"log sample rate must be between 0 and 1, got {policy['log_sample_rate']}")
    return MonitoringPolicy(**policy).to_json()


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
