"""Aliases of models: where they point, moving them (set, rollback, delete), and
their history.

Every move is also an alias event, so a rollback finds the version an alias
pointed to before its last move, and ``alias_history`` shows who moved what.
A protected alias only takes a version approved under the four-eyes rule
(:func:`finmaas.registry.approvals.check_four_eyes`). Setting an alias to a version
whose task, classes or positive class differ from its current version's changes
what every client of the alias reads, so it must be accepted explicitly.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.errors import Conflict, NotFound
from finmaas.registry.approvals import check_four_eyes
from finmaas.registry.audit import append_entry
from finmaas.registry.clock import Clock
from finmaas.registry.compare import SignatureField, meaning_changes
from finmaas.registry.lookups import alias_version, find_version, model_row
from finmaas.registry.records import Alias, AliasEvent, AliasSnapshot
from finmaas.registry.rows import alias_event_record, alias_record
from finmaas.registry.tables import alias_events, aliases, models


def list_aliases(conn: Connection, name: str) -> list[Alias]:
    model = model_row(conn, name)
    rows = conn.execute(
        sa.select(aliases).where(aliases.c.model_id == model["id"]).order_by(aliases.c.name)
    ).mappings()
    return [alias_record(name, row) for row in rows]


def set_alias(
    conn: Connection,
    name: str,
    alias: str,
    version: int,
    who: Actor,
    *,
    clock: Clock,
    single_approver: bool,
    accept_signature_change: bool = False,
) -> Alias:
    model = model_row(conn, name, lock=True)
    target = find_version(conn, model, version)
    if target.status == "archived":
        raise Conflict(
            f"version {version} of model {name!r} is archived; alias {alias!r} cannot point to it"
        )
    current = alias_version(conn, model["id"], alias)
    if current == version:
        raise Conflict(f"alias {alias!r} of model {name!r} already points to version {version}")
    changes: list[SignatureField] = []
    if current is not None:
        changes = meaning_changes(find_version(conn, model, current).signature, target.signature)
        if changes and not accept_signature_change:
            raise Conflict(_signature_change_refusal(name, alias, current, version, changes))
    check_four_eyes(conn, model, alias, target, single_approver=single_approver)
    accepted = [f"{change.name}: {change.change}" for change in changes]
    return _move(conn, model, alias, current, version, "set", who, clock, accepted)


def _signature_change_refusal(
    name: str, alias: str, current: int, version: int, changes: list[SignatureField]
) -> str:
    listed = "; ".join(f"{change.name} {change.change}" for change in changes)
    return (
        f"version {version} of model {name!r} changes what alias {alias!r} returns "
        f"(now version {current}): {listed}. Clients of {alias!r} would read probabilities "
        "and labels of another meaning; if that is intended, accept the change "
        '(--accept-signature-change, or "accept_signature_change": true in the API body)'
    )


def rollback_alias(
    conn: Connection,
    name: str,
    alias: str,
    who: Actor,
    *,
    clock: Clock,
    single_approver: bool,
) -> Alias:
    model = model_row(conn, name, lock=True)
    current = alias_version(conn, model["id"], alias)
    if current is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    stack = _stack(conn, model["id"], alias)
    if len(stack) < 2:
        raise Conflict(f"alias {alias!r} of model {name!r} has no earlier version to roll back to")
    target = stack[-2]
    version = find_version(conn, model, target)
    if version.status == "archived":
        raise Conflict(
            f"cannot roll back alias {alias!r} of model {name!r} to version {target}: "
            "it is archived"
        )
    check_four_eyes(conn, model, alias, version, single_approver=single_approver)
    return _move(conn, model, alias, current, target, "rollback", who, clock)


def delete_alias(conn: Connection, name: str, alias: str, who: Actor, *, clock: Clock) -> None:
    model = model_row(conn, name, lock=True)
    current = alias_version(conn, model["id"], alias)
    if current is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    conn.execute(
        sa.delete(aliases).where(aliases.c.model_id == model["id"], aliases.c.name == alias)
    )
    _record_event(conn, model["id"], alias, "delete", current, None, who.name, clock)
    append_entry(
        conn,
        who,
        "alias.delete",
        f"{name}:{alias}",
        tenant=model["tenant"],
        before={"version": current},
        at=clock(),
    )


def delete_all_aliases(conn: Connection, model: RowMapping, who: Actor, *, clock: Clock) -> None:
    """Delete every alias of ``model`` (it is being archived), each with its event."""
    for alias in conn.execute(
        sa.select(aliases).where(aliases.c.model_id == model["id"])
    ).mappings():
        _record_event(
            conn, model["id"], alias["name"], "delete", alias["version"], None, who.name, clock
        )
    conn.execute(sa.delete(aliases).where(aliases.c.model_id == model["id"]))


def alias_snapshot(conn: Connection) -> AliasSnapshot:
    names = conn.execute(sa.select(models.c.name).where(models.c.status == "active")).scalars()
    pointers = conn.execute(
        sa.select(models.c.name, aliases.c.name, aliases.c.version)
        .join(models, models.c.id == aliases.c.model_id)
        .where(models.c.status == "active")
    )
    return AliasSnapshot(
        models=frozenset(names),
        aliases={(model, alias): version for model, alias, version in pointers},
    )


def alias_history(conn: Connection, name: str, alias: str | None) -> list[AliasEvent]:
    model = model_row(conn, name)
    query = (
        sa.select(alias_events)
        .where(alias_events.c.model_id == model["id"])
        .order_by(alias_events.c.id)
    )
    if alias is not None:
        query = query.where(alias_events.c.alias == alias)
    return [alias_event_record(name, row) for row in conn.execute(query).mappings()]


def _stack(conn: Connection, model_id: int, alias: str) -> list[int]:
    """Versions the alias went through, undone moves removed; the last is current."""
    stack: list[int] = []
    rows = conn.execute(
        sa.select(alias_events.c.action, alias_events.c.to_version)
        .where(alias_events.c.model_id == model_id, alias_events.c.alias == alias)
        .order_by(alias_events.c.id)
    )
    for action, to_version in rows:
        if action == "set":
            stack.append(to_version)
        elif action == "rollback":
            stack.pop()
        else:
            stack.clear()
    return stack


def _move(
    conn: Connection,
    model: RowMapping,
    alias: str,
    current: int | None,
    version: int,
    action: str,
    who: Actor,
    clock: Clock,
    accepted: list[str] | None = None,
) -> Alias:
    now = clock()
    actor = who.name
    if current is None:
        conn.execute(
            sa.insert(aliases).values(
                model_id=model["id"],
                name=alias,
                version=version,
                updated_by=actor,
                updated_at=now,
            )
        )
    else:
        conn.execute(
            sa.update(aliases)
            .where(aliases.c.model_id == model["id"], aliases.c.name == alias)
            .values(version=version, updated_by=actor, updated_at=now)
        )
    _record_event(conn, model["id"], alias, action, current, version, actor, clock)
    append_entry(
        conn,
        who,
        f"alias.{action}",
        f"{model['name']}:{alias}",
        tenant=model["tenant"],
        before={"version": current},
        after={"version": version, **({"signature_change": accepted} if accepted else {})},
        at=clock(),
    )
    return Alias(model=model["name"], name=alias, version=version, updated_by=actor, updated_at=now)


def _record_event(
    conn: Connection,
    model_id: int,
    alias: str,
    action: str,
    from_version: int | None,
    to_version: int | None,
    actor: str,
    clock: Clock,
) -> None:
    conn.execute(
        sa.insert(alias_events).values(
            model_id=model_id,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            at=clock(),
        )
    )
