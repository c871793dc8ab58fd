"""Approvals of versions (four-eyes): who may decide, recording a decision, and
whether a version may take a protected alias.

A validator of the model's tenant or an admin decides; the author of a version
may not approve it unless the deployment runs with ``single_approver``. Only
decisions of the model's tenant's validators and of admins count towards a
protected alias.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.errors import Conflict, Forbidden, Invalid
from finmaas.registry import fields
from finmaas.registry.audit import append_entry
from finmaas.registry.clock import Clock
from finmaas.registry.lookups import find_version, model_row
from finmaas.registry.records import DEFAULT_PROTECTED_ALIASES, Approval, ModelVersion
from finmaas.registry.rows import approval_record
from finmaas.registry.tables import approvals, models


def check_decision(decision: str, who: Actor) -> str:
    """The audited action for ``decision``, when it is one and ``who`` may decide at all."""
    if decision not in ("approved", "rejected"):
        raise Invalid(f"decision must be 'approved' or 'rejected', got {decision!r}")
    if who.role not in ("validator", "admin"):
        raise Forbidden(f"this needs the role validator; {who.name}'s role is {who.role}")
    return _action(decision)


def check_note(note: str) -> str:
    note = fields.check_text("note", note.strip())
    if not note:
        raise Invalid("a note is required: say what was reviewed and why")
    return note


def decide(
    conn: Connection,
    name: str,
    version: int,
    decision: str,
    note: str,
    who: Actor,
    *,
    clock: Clock,
    single_approver: bool,
) -> Approval:
    """Record ``who``'s checked decision; the model's validation status follows it."""
    model = model_row(conn, name, lock=True)
    target = find_version(conn, model, version)
    if target.status == "archived":
        raise Conflict(f"version {version} of model {name!r} is archived")
    if decision == "approved" and target.created_by == who.name and not single_approver:
        raise Forbidden(
            f"four-eyes rule: {who.name} registered version {version} of model {name!r} and "
            f"may not approve it. Another validator of tenant {model['tenant']!r} (a "
            "different person) or an admin must approve it with their own key: "
            f"`finmaas --server URL models approve {name} {version} --note …`"
        )
    at = clock()
    conn.execute(
        sa.insert(approvals).values(
            model_id=model["id"],
            version=version,
            decision=decision,
            note=note,
            actor=who.name,
            at=at,
            tenant=who.tenant,
            role=who.role,
        )
    )
    conn.execute(
        sa.update(models)
        .where(models.c.id == model["id"])
        .values(validation_status=decision, updated_at=at)
    )
    append_entry(
        conn,
        who,
        _action(decision),
        f"{name}@{version}",
        tenant=model["tenant"],
        before={"validation_status": model["validation_status"]},
        after={"validation_status": decision, "note": note},
        at=clock(),
    )
    return Approval(
        name,
        version,
        decision,  # type: ignore[arg-type]
        note,
        who.name,
        at,
        tenant=who.tenant,
        role=who.role,
    )


def list_approvals(conn: Connection, name: str, version: int | None) -> list[Approval]:
    model = model_row(conn, name)
    query = sa.select(approvals).where(approvals.c.model_id == model["id"]).order_by(approvals.c.id)
    if version is not None:
        query = query.where(approvals.c.version == version)
    return [approval_record(name, row) for row in conn.execute(query).mappings()]


def check_four_eyes(
    conn: Connection,
    model: RowMapping,
    alias: str,
    target: ModelVersion,
    *,
    single_approver: bool,
) -> None:
    """Refuse to point a protected ``alias`` at ``target`` without an approval that counts."""
    protected = model["protected_aliases"]
    if alias not in (DEFAULT_PROTECTED_ALIASES if protected is None else protected):
        return
    # Only decisions of the model's tenant's validators and of admins count; an
    # approval whose validator is unknown (empty tenant and role) counts for nothing.
    counts = sa.or_(approvals.c.role == "admin", approvals.c.tenant == model["tenant"])
    latest = (
        conn.execute(
            sa.select(approvals.c.decision, approvals.c.actor)
            .where(
                approvals.c.model_id == model["id"],
                approvals.c.version == target.version,
                counts,
            )
            .order_by(approvals.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    independent = latest is not None and (single_approver or latest["actor"] != target.created_by)
    if latest is None or latest["decision"] != "approved" or not independent:
        raise Forbidden(
            f"alias {alias!r} of model {model['name']!r} is protected: version "
            f"{target.version} needs an approval by a validator of tenant "
            f"{model['tenant']!r} or an admin, other than its author "
            f"({target.created_by}). Such a validator approves it with their own key "
            f"(`finmaas --server URL models approve {model['name']} {target.version} "
            "--note …`); then promote it again"
        )


def _action(decision: str) -> str:
    return "version.approve" if decision == "approved" else "version.reject"
