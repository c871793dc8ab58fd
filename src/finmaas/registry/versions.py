"""Versions of models: publishing one, reading and archiving them, and which
artifacts archived versions leave to purge.

A version is immutable once published; the registry numbers them per model
under the model's row lock, so concurrent publishers get distinct numbers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.errors import Conflict, Forbidden, Invalid, NotFound
from finmaas.registry import fields
from finmaas.registry.audit import append_entry
from finmaas.registry.clock import Clock
from finmaas.registry.lookups import (
    aliases_by_version,
    find_version,
    model_query,
    model_row,
    resolve,
)
from finmaas.registry.models import insert_model
from finmaas.registry.records import ModelVersion, NewModel, NewVersion
from finmaas.registry.rows import version_record
from finmaas.registry.tables import model_versions, models


def version_values(new: NewVersion, actor: str, *, clock: Clock) -> dict[str, Any]:
    """The checked columns of a new version (all but its model and number)."""
    if len(new.artifact_digest) != 64 or not all(
        c in "0123456789abcdef" for c in new.artifact_digest
    ):
        raise Invalid(
            f"artifact digest must be 64 lowercase hex characters, got {new.artifact_digest!r}"
        )
    if new.parent_version is not None and new.parent_version < 1:
        raise Invalid(f"parent version must be ≥ 1, got {new.parent_version}")
    return {
        "status": "active",
        "artifact_digest": new.artifact_digest,
        "artifact_format": new.artifact_format,
        "artifact_size": new.artifact_size,
        "signature": new.signature.to_dict(),
        "metrics": fields.check_metrics(new.metrics),
        "params": fields.check_json("params", new.params, fields.MAX_PARAMS_BYTES),
        "tags": fields.check_tags(new.tags),
        "parent_version": new.parent_version,
        "lineage": fields.check_json("lineage", new.lineage, fields.MAX_LINEAGE_BYTES),
        "reference_profile": (
            None
            if new.reference_profile is None
            else fields.check_json(
                "reference profile", new.reference_profile, fields.MAX_PROFILE_BYTES
            )
        ),
        "explanation": (
            None
            if new.explanation is None
            else fields.check_json("explanation", new.explanation, fields.MAX_PROFILE_BYTES)
        ),
        "model_card": fields.check_text("model card", new.model_card, fields.MAX_MODEL_CARD),
        "created_by": fields.check_text("actor", actor, fields.MAX_ACTOR, one_line=True),
        "created_at": clock(),
    }


def publish_version(
    conn: Connection,
    name: str,
    new: NewVersion,
    values: dict[str, Any],
    who: Actor,
    model_spec: NewModel,
    *,
    clock: Clock,
) -> ModelVersion:
    """Number and insert the version whose :func:`version_values` are ``values``;
    create the model from ``model_spec`` when this is its first version."""
    row = conn.execute(model_query(name, lock=True)).mappings().first()
    if row is None:
        row = insert_model(conn, name, new.signature.task, who, model_spec, clock=clock)
    elif not who.acts_for(row["tenant"]):  # created since the caller's check
        raise Forbidden(f"model {name!r} belongs to another tenant")
    _check_publishable(row, new)
    number = conn.execute(
        sa.update(models)
        .where(models.c.id == row["id"])
        .values(latest_version=models.c.latest_version + 1, updated_at=values["created_at"])
        .returning(models.c.latest_version)
    ).scalar_one()
    conn.execute(sa.insert(model_versions).values(model_id=row["id"], version=number, **values))
    append_entry(
        conn,
        who,
        "version.publish",
        f"{name}@{number}",
        tenant=row["tenant"],
        after={
            "digest": new.artifact_digest,
            "format": new.artifact_format,
            "parent_version": new.parent_version,
        },
        at=clock(),
    )
    return find_version(conn, row, number)


def get_version(conn: Connection, name: str, ref: int | str) -> ModelVersion:
    model = model_row(conn, name)
    return find_version(conn, model, resolve(conn, model, ref))


def list_versions(conn: Connection, name: str, *, include_archived: bool) -> list[ModelVersion]:
    model = model_row(conn, name)
    query = (
        sa.select(model_versions)
        .where(model_versions.c.model_id == model["id"])
        .order_by(model_versions.c.version)
    )
    if not include_archived:
        query = query.where(model_versions.c.status == "active")
    by_version = aliases_by_version(conn, model["id"])
    return [
        version_record(name, row, by_version.get(row["version"], ()))
        for row in conn.execute(query).mappings()
    ]


def servable_versions(conn: Connection, name: str | None) -> dict[str, list[int]]:
    """The version numbers of every active model (or of ``name``) that are not
    archived, by model name; both in order."""
    query = (
        sa.select(models.c.name, model_versions.c.version)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(models.c.status == "active", model_versions.c.status == "active")
        .order_by(models.c.name, model_versions.c.version)
    )
    if name is not None:
        query = query.where(models.c.name == name)
    servable: dict[str, list[int]] = {}
    for model, version in conn.execute(query):
        servable.setdefault(model, []).append(int(version))
    return servable


def archive_version(
    conn: Connection, name: str, version: int, who: Actor, *, clock: Clock
) -> ModelVersion:
    model = model_row(conn, name, lock=True)
    current = find_version(conn, model, version)
    if current.status == "archived":
        raise Conflict(f"version {version} of model {name!r} is already archived")
    if current.aliases:
        raise Conflict(
            f"version {version} of model {name!r} is the target of alias "
            f"{current.aliases[0]!r}; move or delete the alias first"
        )
    conn.execute(
        sa.update(model_versions)
        .where(model_versions.c.model_id == model["id"], model_versions.c.version == version)
        .values(status="archived", archived_at=clock())
    )
    append_entry(
        conn,
        who,
        "version.archive",
        f"{name}@{version}",
        tenant=model["tenant"],
        before={"status": "active"},
        after={"status": "archived"},
        at=clock(),
    )
    return find_version(conn, model, version)


def versions_using_artifact(conn: Connection, digest: str) -> list[ModelVersion]:
    query = (
        sa.select(model_versions, models.c.name)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(model_versions.c.artifact_digest == digest)
    )
    return [version_record(row["name"], row, ()) for row in conn.execute(query).mappings()]


def purgeable_artifacts(conn: Connection) -> list[str]:
    active = sa.select(model_versions.c.artifact_digest).where(model_versions.c.status == "active")
    query = (
        sa.select(model_versions.c.artifact_digest)
        .where(
            model_versions.c.status == "archived",
            model_versions.c.artifact_purged_at.is_(None),
            model_versions.c.artifact_digest.not_in(active),
        )
        .distinct()
        .order_by(model_versions.c.artifact_digest)
    )
    return list(conn.execute(query).scalars())


def mark_artifact_purged(conn: Connection, digest: str, who: Actor, *, clock: Clock) -> bool:
    in_use = conn.execute(
        sa.select(sa.func.count()).where(
            model_versions.c.artifact_digest == digest,
            model_versions.c.status == "active",
        )
    ).scalar_one()
    if in_use:
        return False
    conn.execute(
        sa.update(model_versions)
        .where(model_versions.c.artifact_digest == digest)
        .values(artifact_purged_at=clock())
    )
    owners = set(
        conn.execute(
            sa.select(models.c.tenant)
            .join(model_versions, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.artifact_digest == digest)
        ).scalars()
    )
    # The file belongs to its versions' tenant; one shared by several tenants'
    # versions (the same bytes pushed twice) is the operator's housekeeping.
    tenant = owners.pop() if len(owners) == 1 else who.tenant
    append_entry(conn, who, "artifact.purge", digest, tenant=tenant, at=clock())
    return True


def _check_publishable(model: RowMapping, new: NewVersion) -> None:
    name = model["name"]
    if model["status"] == "archived":
        raise Conflict(f"model {name!r} is archived; it takes no new versions")
    if model["task"] != new.signature.task:
        raise Invalid(
            f"model {name!r} is a {model['task']} model but the signature says {new.signature.task}"
        )
    if new.parent_version is not None and new.parent_version > model["latest_version"]:
        raise NotFound(f"model {name!r} has no version {new.parent_version} to be the parent")
