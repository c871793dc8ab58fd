"""The audit trail: an append-only, hash-chained log of every control-plane change.

Each entry stores the hash of the one before it, and its own hash covers every
field plus that link, so editing, deleting or reordering any row breaks the
chain where it happened; ``audit_head`` holds the last id and hash, so cutting
rows off the end is caught too. Entries are appended inside the transaction
of the change they describe: a change is never recorded without its entry, nor
an entry without its change. Appends serialise on the ``audit_head`` row.

An entry belongs to the tenant that owns the object it is about (a key's
tenant, a model's tenant for its versions, aliases and approvals), whoever
acted: that tenant's auditors read it. The caller names that tenant on every
append; there is no default to forget.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.registry import fields
from finmaas.registry.tables import audit_head, audit_log

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    tenant: str
    origin: str
    action: str
    target: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_chain`: ``ok``, entries checked, and the first break."""

    ok: bool
    checked: int
    problem: str = ""
    entry_id: int | None = None


def append_entry(
    conn: Connection,
    actor: Actor,
    action: str,
    target: str,
    *,
    tenant: str,
    before: Any = None,
    after: Any = None,
    at: datetime,
) -> AuditEntry:
    """Append one entry in ``conn``'s transaction and move the head.

    ``tenant`` is the tenant the entry belongs to: the owner of ``target``, not
    necessarily ``actor``'s tenant.
    """
    head = conn.execute(
        sa.select(audit_head.c.last_id, audit_head.c.last_hash)
        .where(audit_head.c.id == 1)
        .with_for_update()
    ).one()
    entry_id = int(head.last_id) + 1
    values = {
        "id": entry_id,
        "at": at.astimezone(UTC),
        "actor": fields.check_text("actor", actor.name, fields.MAX_ACTOR, one_line=True),
        "tenant": tenant,
        "origin": actor.origin[:200],
        "action": action,
        "target": target[:300],
        "before": _plain(before),
        "after": _plain(after),
        "prev_hash": head.last_hash,
    }
    values["hash"] = entry_hash(values)
    conn.execute(sa.insert(audit_log).values(**values))
    conn.execute(
        sa.update(audit_head)
        .where(audit_head.c.id == 1)
        .values(last_id=entry_id, last_hash=values["hash"])
    )
    return _entry(values)


def entry_hash(values: dict[str, Any]) -> str:
    """sha256 over every field of an entry, in a canonical form that survives the database."""
    at: datetime = values["at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    document = [
        values["id"],
        at.isoformat(timespec="microseconds"),
        values["actor"],
        values["tenant"],
        values["origin"],
        values["action"],
        values["target"],
        values["before"],
        values["after"],
        values["prev_hash"],
    ]
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def list_entries(conn: Connection, where: AuditFilter) -> list[AuditEntry]:
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, where.limit))
    if where.actor is not None:
        query = query.where(audit_log.c.actor == where.actor)
    if where.action is not None:
        query = query.where(audit_log.c.action.like(where.action.replace("*", "%")))
    if where.target is not None:
        query = query.where(audit_log.c.target.like(where.target.replace("*", "%")))
    if where.tenant is not None:
        query = query.where(audit_log.c.tenant == where.tenant)
    if where.since is not None:
        query = query.where(audit_log.c.at >= where.since)
    if where.until is not None:
        query = query.where(audit_log.c.at < where.until)
    rows = list(conn.execute(query).mappings())
    return [_entry(row) for row in reversed(rows)]


def verify_chain(conn: Connection, *, batch: int = 5000) -> ChainReport:
    """Recompute every hash and link, in id order, and compare with the head."""
    expected_prev, expected_id, checked = GENESIS, 1, 0
    last_id = 0
    while True:
        rows = list(
            conn.execute(
                sa.select(audit_log)
                .where(audit_log.c.id > last_id)
                .order_by(audit_log.c.id)
                .limit(batch)
            ).mappings()
        )
        for row in rows:
            problem = _check_row(row, expected_id, expected_prev)
            if problem:
                return ChainReport(False, checked, problem, int(row["id"]))
            expected_prev, expected_id = row["hash"], expected_id + 1
            checked += 1
        if len(rows) < batch:
            break
        last_id = int(rows[-1]["id"])
    head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).mappings().one()
    if head["last_id"] != checked or head["last_hash"] != expected_prev:
        return ChainReport(
            False,
            checked,
            f"the log ends at entry {checked} but its head says {head['last_id']}: "
            "entries were deleted from the end",
            checked or None,
        )
    return ChainReport(True, checked)


def _check_row(row: RowMapping, expected_id: int, expected_prev: str) -> str:
    entry_id = int(row["id"])
    if entry_id != expected_id:
        return f"entry {expected_id} is missing: the log jumps to {entry_id}"
    if row["prev_hash"] != expected_prev:
        return f"entry {entry_id} does not link to the entry before it"
    if entry_hash(dict(row)) != row["hash"]:
        return f"entry {entry_id} was changed after it was written: its hash does not match"
    return ""


def _plain(value: Any) -> Any:
    """JSON-safe copy (dates as ISO text), so the stored value hashes the same when read."""
    if value is None:
        return None
    return orjson.loads(orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS))


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def _entry(row: Any) -> AuditEntry:
    at: datetime = row["at"]
    return AuditEntry(
        id=int(row["id"]),
        at=at.replace(tzinfo=UTC) if at.tzinfo is None else at,
        actor=row["actor"],
        tenant=row["tenant"],
        origin=row["origin"],
        action=row["action"],
        target=row["target"],
        before=row["before"],
        after=row["after"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
