"""The reads every part of the registry shares, inside the caller's transaction.

A model's row (locked when the caller is about to change it), one version with
the aliases that point at it, where an alias points, and a version reference
(a number, its digits, or an alias name) resolved to a number.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.errors import NotFound
from finmaas.registry.records import ModelVersion
from finmaas.registry.rows import version_record
from finmaas.registry.tables import aliases, model_versions, models


def model_query(name: str, *, lock: bool = False) -> sa.Select[Any]:
    query = sa.select(models).where(models.c.name == name)
    return query.with_for_update() if lock else query


def model_row(conn: Connection, name: str, *, lock: bool = False) -> RowMapping:
    row = conn.execute(model_query(name, lock=lock)).mappings().first()
    if row is None:
        raise NotFound(f"model {name!r} not found")
    return row


def find_version(conn: Connection, model: RowMapping, version: int) -> ModelVersion:
    row = (
        conn.execute(
            sa.select(model_versions).where(
                model_versions.c.model_id == model["id"], model_versions.c.version == version
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"model {model['name']!r} has no version {version}")
    tags = aliases_by_version(conn, model["id"]).get(version, ())
    return version_record(model["name"], row, tags)


def aliases_by_version(conn: Connection, model_id: int) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    rows = conn.execute(
        sa.select(aliases.c.name, aliases.c.version)
        .where(aliases.c.model_id == model_id)
        .order_by(aliases.c.name)
    )
    for alias_name, version in rows:
        out.setdefault(version, []).append(alias_name)
    return {version: tuple(names) for version, names in out.items()}


def alias_version(conn: Connection, model_id: int, alias: str) -> int | None:
    value = conn.execute(
        sa.select(aliases.c.version).where(aliases.c.model_id == model_id, aliases.c.name == alias)
    ).scalar_one_or_none()
    return None if value is None else int(value)


def resolve(conn: Connection, model: RowMapping, ref: int | str) -> int:
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        return int(ref)
    version = alias_version(conn, model["id"], ref)
    if version is None:
        raise NotFound(f"model {model['name']!r} has no alias {ref!r}")
    return version
