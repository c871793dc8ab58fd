"""The hash-chained audit trail and the four-eyes rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.errors import Forbidden
from finmaas.registry import Registry
from finmaas.registry.audit import GENESIS, AuditFilter, entry_hash, verify_chain
from finmaas.registry.records import ModelUpdate, NewModel
from finmaas.registry.tables import audit_head, audit_log
from tests.approvals import VALIDATOR, approve
from tests.integration.registry.helpers import new_version

NOTE = "reviewed in a test"


def run_history(registry: Registry) -> None:
    """Publish, approve, promote, roll back, archive and edit: every write is audited."""
    registry.publish_version("credit-risk", new_version("a"), actor="alice")
    registry.publish_version("credit-risk", new_version("b", parent_version=1), actor="alice")
    approve(registry, "credit-risk", 1, 2)
    registry.set_alias("credit-risk", "production", 1, actor="alice")
    registry.set_alias("credit-risk", "production", 2, actor="alice")
    registry.rollback_alias("credit-risk", "production", actor="alice")
    registry.archive_version("credit-risk", 2, actor="alice")
    registry.update_model(
        "credit-risk",
        ModelUpdate(owner="risk-team", risk_tier=2, next_review=date(2027, 1, 31)),
        actor="alice",
    )
    registry.archive_model("credit-risk", actor="alice")


def tamper(registry: Registry, statement: sa.Executable) -> None:
    with registry.engine.begin() as conn:
        conn.execute(statement)


def test_every_write_appends_the_right_entry(registry: Registry) -> None:
    assert registry.verify_audit().ok
    assert registry.verify_audit().checked == 0
    run_history(registry)

    entries = registry.audit_entries()
    digest_a, digest_b = new_version("a").artifact_digest, new_version("b").artifact_digest
    approved = {"validation_status": "approved", "note": NOTE}
    assert [(e.id, e.actor, e.action, e.target, e.before, e.after) for e in entries] == [
        (
            1,
            "alice",
            "model.create",
            "credit-risk",
            None,
            {"task": "binary", "tenant": "default", "owner": ""},
        ),
        (
            2,
            "alice",
            "version.publish",
            "credit-risk@1",
            None,
            {"digest": digest_a, "format": "lightgbm", "parent_version": None},
        ),
        (
            3,
            "alice",
            "version.publish",
            "credit-risk@2",
            None,
            {"digest": digest_b, "format": "lightgbm", "parent_version": 1},
        ),
        (
            4,
            VALIDATOR,
            "version.approve",
            "credit-risk@1",
            {"validation_status": "draft"},
            approved,
        ),
        (
            5,
            VALIDATOR,
            "version.approve",
            "credit-risk@2",
            {"validation_status": "approved"},
            approved,
        ),
        (6, "alice", "alias.set", "credit-risk:production", {"version": None}, {"version": 1}),
        (7, "alice", "alias.set", "credit-risk:production", {"version": 1}, {"version": 2}),
        (8, "alice", "alias.rollback", "credit-risk:production", {"version": 2}, {"version": 1}),
        (
            9,
            "alice",
            "version.archive",
            "credit-risk@2",
            {"status": "active"},
            {"status": "archived"},
        ),
        (
            10,
            "alice",
            "model.update",
            "credit-risk",
            {"owner": "", "risk_tier": None, "next_review": None},
            {"owner": "risk-team", "risk_tier": 2, "next_review": "2027-01-31"},
        ),
        (11, "alice", "model.archive", "credit-risk", {"status": "active"}, {"status": "archived"}),
    ]
    assert {(e.tenant, e.origin) for e in entries} == {("default", "local")}
    assert all(e.at.tzinfo is not None for e in entries)
    assert [e.at for e in entries] == sorted(e.at for e in entries)

    # Each entry links to the one before it, and the head holds the last one.
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in entries}) == len(entries)
    with registry.read() as conn:
        head = conn.execute(sa.select(audit_head)).mappings().one()
    assert (head["id"], head["last_id"], head["last_hash"]) == (1, 11, entries[-1].hash)

    report = registry.verify_audit()
    assert (report.ok, report.checked, report.problem, report.entry_id) == (True, 11, "", None)


def test_stored_hashes_match_a_recomputation(registry: Registry) -> None:
    run_history(registry)
    with registry.read() as conn:
        rows = list(conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings())
    assert len(rows) == 11
    for row in rows:
        assert entry_hash(dict(row)) == row["hash"]


def test_an_entry_records_the_actor_and_origin_in_the_objects_tenant(
    registry: Registry,
) -> None:
    developer = Actor(
        name="key:0123456789abcdef", role="developer", tenant="retail", origin="10.1.2.3"
    )
    admin = Actor(name="key:00000000000000aa", role="admin", tenant="default", origin="10.9.9.9")
    registry.publish_version(
        "credit-risk", new_version(), actor=developer, model_spec=NewModel(tenant="retail")
    )
    registry.publish_version("credit-risk", new_version("b"), actor=admin)
    registry.record_event(
        developer, "server.start", "serve", tenant="retail", after={"insecure": True}
    )
    entries = registry.audit_entries()
    assert [(e.actor, e.tenant, e.origin, e.action) for e in entries] == [
        ("key:0123456789abcdef", "retail", "10.1.2.3", "model.create"),
        ("key:0123456789abcdef", "retail", "10.1.2.3", "version.publish"),
        ("key:00000000000000aa", "retail", "10.9.9.9", "version.publish"),
        ("key:0123456789abcdef", "retail", "10.1.2.3", "server.start"),
    ]
    assert entries[-1].after == {"insecure": True}
    assert entries[-1].before is None
    assert registry.verify_audit().ok


def test_audit_filters(registry: Registry) -> None:
    run_history(registry)

    def ids(**where: object) -> list[int]:
        return [e.id for e in registry.audit_entries(AuditFilter(**where))]  # type: ignore[arg-type]

    assert ids(action="alias.*") == [6, 7, 8]
    assert ids(action="version.approve") == [4, 5]
    assert ids(target="credit-risk@*") == [2, 3, 4, 5, 9]
    assert ids(target="credit-risk@2") == [3, 5, 9]
    assert ids(actor=VALIDATOR) == [4, 5]
    assert ids(tenant="default", limit=3) == [9, 10, 11]  # the newest, oldest first
    assert ids(tenant="retail") == []
    assert ids(limit=0) == [11]
    entries = registry.audit_entries()
    assert ids(since=entries[5].at, until=entries[7].at) == [6, 7]


def test_a_changed_entry_breaks_the_chain(registry: Registry) -> None:
    run_history(registry)
    tamper(
        registry, sa.update(audit_log).where(audit_log.c.id == 6).values(target="fraud:production")
    )
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 5, 6)
    assert report.problem == "entry 6 was changed after it was written: its hash does not match"


def test_a_changed_payload_breaks_the_chain(registry: Registry) -> None:
    run_history(registry)
    tamper(registry, sa.update(audit_log).where(audit_log.c.id == 4).values(after={"x": 1}))
    report = registry.verify_audit()
    assert (report.ok, report.entry_id) == (False, 4)
    assert report.problem == "entry 4 was changed after it was written: its hash does not match"


def test_a_rehashed_entry_breaks_the_next_link(registry: Registry) -> None:
    """Recomputing the edited entry's own hash is caught by the next entry's link."""
    run_history(registry)
    with registry.engine.begin() as conn:
        row = dict(conn.execute(sa.select(audit_log).where(audit_log.c.id == 6)).mappings().one())
        row["actor"] = "mallory"
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.id == 6)
            .values(actor="mallory", hash=entry_hash(row))
        )
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 6, 7)
    assert report.problem == "entry 7 does not link to the entry before it"


def test_a_deleted_middle_entry_is_missing(registry: Registry) -> None:
    run_history(registry)
    tamper(registry, sa.delete(audit_log).where(audit_log.c.id == 5))
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 4, 6)
    assert report.problem == "entry 5 is missing: the log jumps to 6"


def test_a_deleted_first_entry_is_missing(registry: Registry) -> None:
    run_history(registry)
    tamper(registry, sa.delete(audit_log).where(audit_log.c.id == 1))
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 0, 2)
    assert report.problem == "entry 1 is missing: the log jumps to 2"


def test_a_deleted_last_entry_disagrees_with_the_head(registry: Registry) -> None:
    run_history(registry)
    tamper(registry, sa.delete(audit_log).where(audit_log.c.id == 11))
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 10, 10)
    assert report.problem == (
        "the log ends at entry 10 but its head says 11: entries were deleted from the end"
    )


def test_an_emptied_log_disagrees_with_the_head(registry: Registry) -> None:
    run_history(registry)
    tamper(registry, sa.delete(audit_log))
    report = registry.verify_audit()
    assert (report.ok, report.checked, report.entry_id) == (False, 0, None)
    assert report.problem == (
        "the log ends at entry 0 but its head says 11: entries were deleted from the end"
    )


def test_verify_reads_in_batches(registry: Registry) -> None:
    run_history(registry)
    with registry.read() as conn:
        assert verify_chain(conn, batch=2).checked == 11
        assert verify_chain(conn, batch=11).ok
    tamper(registry, sa.delete(audit_log).where(audit_log.c.id == 9))
    with registry.read() as conn:
        report = verify_chain(conn, batch=4)
    assert report.problem == "entry 9 is missing: the log jumps to 10"


def test_appends_after_a_verified_chain_stay_verified(registry: Registry) -> None:
    run_history(registry)
    assert registry.verify_audit().ok
    registry.publish_version("fraud", new_version("c"), actor="bob")
    report = registry.verify_audit()
    assert (report.ok, report.checked) == (True, 13)


# -- four-eyes ---------------------------------------------------------------------


def protected_message(name: str, alias: str, version: int, author: str) -> str:
    return (
        f"alias {alias!r} of model {name!r} is protected: version {version} needs an approval "
        f"by a validator of tenant 'default' or an admin, other than its author ({author}). "
        "Such a validator approves it with their own key "
        f"(`finmaas --server URL models approve {name} {version} --note …`); then promote it again"
    )


def test_the_author_cannot_approve_their_own_version(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="alice")
    with pytest.raises(Forbidden) as err:
        registry.decide("m", 1, "approved", note=NOTE, actor="alice")
    assert str(err.value) == (
        "four-eyes rule: alice registered version 1 of model 'm' and may not approve it. "
        "Another validator of tenant 'default' (a different person) or an admin must approve "
        "it with their own key: `finmaas --server URL models approve m 1 --note …`"
    )
    assert registry.list_approvals("m") == []
    assert registry.get_model("m").validation_status == "draft"
    assert [e.action for e in registry.audit_entries()] == ["model.create", "version.publish"]

    # Rejecting one's own version is fine.
    rejection = registry.decide("m", 1, "rejected", note="found a leak", actor="alice")
    assert (rejection.decision, rejection.actor) == ("rejected", "alice")
    assert registry.get_model("m").validation_status == "rejected"


def test_a_protected_alias_needs_an_independent_approval(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="alice")
    with pytest.raises(Forbidden) as err:
        registry.set_alias("m", "production", 1, actor="alice")
    assert str(err.value) == protected_message("m", "production", 1, "alice")
    assert registry.list_aliases("m") == []

    registry.decide("m", 1, "approved", note=NOTE, actor="bob")
    assert registry.set_alias("m", "production", 1, actor="alice").version == 1
    assert registry.get_model("m").validation_status == "approved"


def test_a_later_rejection_withdraws_the_approval(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    registry.publish_version("m", new_version("b"), actor="alice")
    registry.decide("m", 2, "approved", note=NOTE, actor="bob")
    registry.decide("m", 2, "rejected", note="drift found", actor="carol")
    with pytest.raises(Forbidden) as err:
        registry.set_alias("m", "production", 2, actor="alice")
    assert str(err.value) == protected_message("m", "production", 2, "alice")
    # An approval of another version does not count either.
    registry.decide("m", 1, "approved", note=NOTE, actor="bob")
    with pytest.raises(Forbidden):
        registry.set_alias("m", "production", 2, actor="alice")


def test_rollback_to_an_approved_version_needs_no_new_approval(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    registry.publish_version("m", new_version("b"), actor="alice")
    approve(registry, "m", 1, 2)
    registry.set_alias("m", "production", 1, actor="alice")
    registry.set_alias("m", "production", 2, actor="alice")
    approvals = registry.list_approvals("m")

    rolled = registry.rollback_alias("m", "production", actor="ops")
    assert (rolled.version, rolled.updated_by) == (1, "ops")
    assert registry.get_version("m", "production").version == 1
    assert registry.list_approvals("m") == approvals
    assert registry.audit_entries()[-1].action == "alias.rollback"


def test_rollback_to_a_version_rejected_since_is_refused(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    registry.publish_version("m", new_version("b"), actor="alice")
    approve(registry, "m", 1, 2)
    registry.set_alias("m", "production", 1, actor="alice")
    registry.set_alias("m", "production", 2, actor="alice")
    registry.decide("m", 1, "rejected", note="withdrawn", actor="carol")
    with pytest.raises(Forbidden) as err:
        registry.rollback_alias("m", "production", actor="ops")
    assert str(err.value) == protected_message("m", "production", 1, "alice")
    assert registry.get_version("m", "production").version == 2


def test_single_approver_lets_the_authors_approval_count(registry: Registry) -> None:
    relaxed = Registry(registry.engine, single_approver=True)
    relaxed.publish_version("m", new_version(), actor="alice")
    approval = relaxed.decide("m", 1, "approved", note=NOTE, actor="alice")
    assert (approval.decision, approval.actor) == ("approved", "alice")
    assert relaxed.set_alias("m", "production", 1, actor="alice").version == 1

    # The strict registry does not count the author's approval.
    relaxed.publish_version("m", new_version("b"), actor="alice")
    relaxed.decide("m", 2, "approved", note=NOTE, actor="alice")
    with pytest.raises(Forbidden) as err:
        registry.set_alias("m", "production", 2, actor="alice")
    assert str(err.value) == protected_message("m", "production", 2, "alice")
    assert relaxed.verify_audit().ok


def test_a_non_protected_alias_needs_no_approval(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    registry.publish_version("m", new_version("b"), actor="alice")
    assert registry.set_alias("m", "staging", 1, actor="alice").version == 1
    assert registry.set_alias("m", "champion", 2, actor="alice").version == 2
    assert registry.set_alias("m", "staging", 2, actor="alice").version == 2
    assert registry.rollback_alias("m", "staging", actor="alice").version == 1
    assert registry.list_approvals("m") == []


def test_protected_aliases_can_be_extended_per_model(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    registry.publish_version("m", new_version("b"), actor="alice")
    registry.set_alias("m", "champion", 1, actor="alice")  # not protected yet
    model = registry.update_model(
        "m", ModelUpdate(protected_aliases=("production", "champion")), actor="admin"
    )
    assert model.protected_aliases == ("champion", "production")
    assert registry.audit_entries()[-1].after == {"protected_aliases": ["champion", "production"]}
    assert registry.audit_entries()[-1].before == {"protected_aliases": None}

    with pytest.raises(Forbidden) as err:
        registry.set_alias("m", "champion", 2, actor="alice")
    assert str(err.value) == protected_message("m", "champion", 2, "alice")
    with pytest.raises(Forbidden) as err:
        registry.set_alias("m", "production", 2, actor="alice")
    assert str(err.value) == protected_message("m", "production", 2, "alice")

    registry.decide("m", 2, "approved", note=NOTE, actor="bob")
    assert registry.set_alias("m", "champion", 2, actor="alice").version == 2
    assert registry.set_alias("m", "production", 2, actor="alice").version == 2
    # Rolling champion back to version 1, never approved, is refused.
    with pytest.raises(Forbidden) as err:
        registry.rollback_alias("m", "champion", actor="alice")
    assert str(err.value) == protected_message("m", "champion", 1, "alice")
    assert registry.verify_audit().ok


def test_production_stays_protected_whatever_the_model_lists(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="author")
    model = registry.update_model("m", ModelUpdate(protected_aliases=()), actor="admin")
    assert model.protected_aliases == ("production",)
    with pytest.raises(Forbidden):
        registry.set_alias("m", "production", 1, actor="admin")
