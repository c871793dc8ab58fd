"""Tenants in the registry: who may change and approve a model, which approvals
count for four-eyes, and which tenant each audit entry belongs to (SQLite and
PostgreSQL). The API's view of the same rules is in
``tests/integration/serving/test_tenant_authz.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.errors import Forbidden
from finmaas.registry import Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.database import create_engine
from finmaas.registry.key_store import KeyStore
from finmaas.registry.migrate import upgrade
from finmaas.registry.records import ModelUpdate, NewModel
from finmaas.registry.tables import api_keys, approvals, models
from tests.integration.registry.helpers import new_version
from tests.integration.registry.test_keys_store import record

NOTE = "back-test and stability reviewed"
OTHER_TENANT = "model 'credit-risk' belongs to another tenant"
AUTHOR = Actor("key:a0a0a0a0a0a0a0a0", role="developer", tenant="tenant-a", origin="10.0.0.1")
A_VALIDATOR = Actor("key:a1a1a1a1a1a1a1a1", role="validator", tenant="tenant-a", origin="10.0.0.2")
B_VALIDATOR = Actor("key:b1b1b1b1b1b1b1b1", role="validator", tenant="tenant-b", origin="10.0.0.3")
B_DEVELOPER = Actor("key:b2b2b2b2b2b2b2b2", role="developer", tenant="tenant-b", origin="10.0.0.4")
ADMIN = Actor("key:d0d0d0d0d0d0d0d0", role="admin", tenant="default", origin="10.0.0.5")


def four_eyes(version: int, author: str = AUTHOR.name) -> str:
    return (
        f"alias 'production' of model 'credit-risk' is protected: version {version} needs an "
        f"approval by a validator of tenant 'tenant-a' or an admin, other than its author "
        f"({author}). Such a validator approves it with their own key (`finmaas --server URL "
        f"models approve credit-risk {version} --note …`); then promote it again"
    )


@pytest.fixture
def tenant_a_model(registry: Registry) -> Registry:
    """``credit-risk`` of tenant-a with two versions by its developer."""
    spec = NewModel(tenant="tenant-a")
    registry.publish_version("credit-risk", new_version("1"), actor=AUTHOR, model_spec=spec)
    registry.publish_version("credit-risk", new_version("2"), actor=AUTHOR)
    return registry


def refusals(registry: Registry) -> list[tuple[str, str, str, object]]:
    return [
        (e.action, e.target, e.tenant, e.after)
        for e in registry.audit_entries(AuditFilter(action="*.refused"))
    ]


# -- approve and reject ------------------------------------------------------------------


@pytest.mark.parametrize(("decision", "action"), [("approved", "approve"), ("rejected", "reject")])
def test_a_validator_of_another_tenant_may_not_decide_and_the_refusal_is_audited(
    tenant_a_model: Registry, decision: str, action: str
) -> None:
    registry = tenant_a_model
    with pytest.raises(Forbidden) as err:
        registry.decide("credit-risk", 2, decision, note=NOTE, actor=B_VALIDATOR)
    assert str(err.value) == OTHER_TENANT
    assert registry.list_approvals("credit-risk") == []
    assert registry.get_model("credit-risk").validation_status == "draft"
    assert refusals(registry) == [
        (
            f"version.{action}.refused",
            "credit-risk@2",
            "tenant-a",  # the model's tenant: its auditors see the attempt
            {"refused": OTHER_TENANT, "actor_tenant": "tenant-b", "actor_role": "validator"},
        )
    ]
    [entry] = registry.audit_entries(AuditFilter(action="*.refused"))
    assert (entry.actor, entry.origin) == (B_VALIDATOR.name, "10.0.0.3")
    assert registry.verify_audit().ok


def test_a_refused_approval_does_not_satisfy_four_eyes(tenant_a_model: Registry) -> None:
    registry = tenant_a_model
    with pytest.raises(Forbidden):
        registry.decide("credit-risk", 2, "approved", note=NOTE, actor=B_VALIDATOR)
    with pytest.raises(Forbidden) as err:
        registry.set_alias("credit-risk", "production", 2, actor=ADMIN)
    assert str(err.value) == four_eyes(2)
    registry.decide("credit-risk", 2, "approved", note=NOTE, actor=A_VALIDATOR)
    assert registry.set_alias("credit-risk", "production", 2, actor=ADMIN).version == 2


def test_only_a_validator_or_an_admin_may_decide(tenant_a_model: Registry) -> None:
    developer = Actor("key:a3a3a3a3a3a3a3a3", role="developer", tenant="tenant-a")
    with pytest.raises(Forbidden) as err:
        tenant_a_model.decide("credit-risk", 1, "rejected", note=NOTE, actor=developer)
    assert str(err.value) == (
        "this needs the role validator; key:a3a3a3a3a3a3a3a3's role is developer"
    )


def test_an_admin_of_any_tenant_and_the_models_validators_decide(
    tenant_a_model: Registry,
) -> None:
    registry = tenant_a_model
    approved = registry.decide("credit-risk", 1, "approved", note=NOTE, actor=ADMIN)
    assert (approved.tenant, approved.role) == ("default", "admin")
    registry.decide("credit-risk", 2, "rejected", note=NOTE, actor=A_VALIDATOR)
    listed = registry.list_approvals("credit-risk")
    assert [(a.version, a.decision, a.actor, a.tenant, a.role) for a in listed] == [
        (1, "approved", ADMIN.name, "default", "admin"),
        (2, "rejected", A_VALIDATOR.name, "tenant-a", "validator"),
    ]
    assert registry.set_alias("credit-risk", "production", 1, actor=ADMIN).version == 1
    entries = registry.audit_entries(AuditFilter(action="version.*"))
    assert [(e.action, e.tenant, e.actor) for e in entries[-2:]] == [
        ("version.approve", "tenant-a", ADMIN.name),  # an admin of default, in tenant-a's trail
        ("version.reject", "tenant-a", A_VALIDATOR.name),
    ]


def _insert_approval(registry: Registry, actor: str, tenant: str | None, role: str | None) -> None:
    """An approval row as an older finmaas (or another tenant's validator) left it."""
    model_id = registry.get_model("credit-risk").id
    with registry.write() as conn:
        conn.execute(
            sa.insert(approvals).values(
                model_id=model_id,
                version=2,
                decision="approved",
                note=NOTE,
                actor=actor,
                at=registry.now(),
                tenant=tenant,
                role=role,
            )
        )


@pytest.mark.parametrize(
    ("actor", "tenant", "role", "counts"),
    [
        (B_VALIDATOR.name, "tenant-b", "validator", False),
        ("key:ffffffffffffffff", None, None, False),  # an approver nobody can vouch for
        (A_VALIDATOR.name, "tenant-a", "validator", True),
        ("key:eeeeeeeeeeeeeeee", "ops", "admin", True),
    ],
)
def test_an_approval_counts_only_from_the_models_tenant_or_an_admin(
    tenant_a_model: Registry, actor: str, tenant: str | None, role: str | None, counts: bool
) -> None:
    registry = tenant_a_model
    _insert_approval(registry, actor, tenant, role)
    if counts:
        assert registry.set_alias("credit-risk", "production", 2, actor=ADMIN).version == 2
        return
    with pytest.raises(Forbidden) as err:
        registry.set_alias("credit-risk", "production", 2, actor=ADMIN)
    assert str(err.value) == four_eyes(2)


def test_a_later_decision_that_does_not_count_does_not_hide_the_one_that_does(
    tenant_a_model: Registry,
) -> None:
    registry = tenant_a_model
    registry.decide("credit-risk", 2, "approved", note=NOTE, actor=A_VALIDATOR)
    _insert_approval(registry, B_VALIDATOR.name, "tenant-b", "validator")
    assert registry.set_alias("credit-risk", "production", 2, actor=ADMIN).version == 2


# -- other changes -----------------------------------------------------------------------


def test_a_key_of_another_tenant_may_not_change_the_model(tenant_a_model: Registry) -> None:
    registry = tenant_a_model
    attempts = [
        ("alias.set", "credit-risk:staging", lambda: registry.set_alias(
            "credit-risk", "staging", 1, actor=B_DEVELOPER
        )),
        ("version.publish", "credit-risk", lambda: registry.publish_version(
            "credit-risk", new_version("3"), actor=B_DEVELOPER
        )),
        ("model.update", "credit-risk", lambda: registry.update_model(
            "credit-risk", ModelUpdate(owner="tenant b"), actor=B_DEVELOPER
        )),
        ("version.archive", "credit-risk@1", lambda: registry.archive_version(
            "credit-risk", 1, actor=B_DEVELOPER
        )),
        ("model.archive", "credit-risk", lambda: registry.archive_model(
            "credit-risk", actor=B_DEVELOPER
        )),
    ]  # fmt: skip
    for _, _, attempt in attempts:
        with pytest.raises(Forbidden) as err:
            attempt()
        assert str(err.value) == OTHER_TENANT
    assert [(action, target) for action, target, _, _ in refusals(registry)] == [
        (f"{action}.refused", target) for action, target, _ in attempts
    ]
    assert {tenant for _, _, tenant, _ in refusals(registry)} == {"tenant-a"}
    model = registry.get_model("credit-risk")
    assert (model.latest_version, model.owner, model.status) == (2, "", "active")
    assert registry.list_aliases("credit-risk") == []
    assert registry.verify_audit().ok


# -- which tenant an audit entry belongs to ----------------------------------------------


def test_entries_belong_to_the_tenant_of_the_object_whoever_acted(
    tenant_a_model: Registry,
) -> None:
    registry = tenant_a_model
    keys = KeyStore(registry)
    b_key = keys.create(record("b-app", tenant="tenant-b"), actor=ADMIN)
    keys.revoke(b_key.id, actor=ADMIN)
    registry.update_model("credit-risk", ModelUpdate(risk_tier=2), actor=ADMIN)
    registry.decide("credit-risk", 2, "approved", note=NOTE, actor=ADMIN)
    registry.set_alias("credit-risk", "production", 2, actor=ADMIN)
    registry.record_event(ADMIN, "server.start", "settings", tenant=ADMIN.tenant)

    def seen_by(tenant: str) -> list[tuple[str, str]]:
        entries = registry.audit_entries(AuditFilter(tenant=tenant, limit=1000))
        return [(e.action, e.target) for e in entries]

    assert seen_by("tenant-b") == [
        ("key.create", f"key:{b_key.id}"),
        ("key.revoke", f"key:{b_key.id}"),
    ]
    assert seen_by("tenant-a") == [
        ("model.create", "credit-risk"),
        ("version.publish", "credit-risk@1"),
        ("version.publish", "credit-risk@2"),
        ("model.update", "credit-risk"),
        ("version.approve", "credit-risk@2"),
        ("alias.set", "credit-risk:production"),
    ]
    assert seen_by("default") == [("server.start", "settings")]  # no object: the actor's
    assert registry.verify_audit().ok


def test_an_artifact_purge_belongs_to_the_tenant_of_its_versions(
    tenant_a_model: Registry,
) -> None:
    registry = tenant_a_model
    registry.archive_version("credit-risk", 1, actor=ADMIN)
    digest = registry.get_version("credit-risk", 1).artifact_digest
    assert registry.mark_artifact_purged(digest, actor=ADMIN)
    [entry] = registry.audit_entries(AuditFilter(action="artifact.purge"))
    assert (entry.tenant, entry.actor) == ("tenant-a", ADMIN.name)


# -- approvals recorded before revision 0007 ---------------------------------------------


def test_migration_0007_attributes_earlier_approvals_by_what_their_actor_proves(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    upgrade(engine, "0006")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for key_id, tenant, role in (("a1a1a1a1a1a1a1a1", "tenant-a", "validator"),
                                     ("b1b1b1b1b1b1b1b1", "tenant-b", "validator")):  # fmt: skip
            conn.execute(
                sa.insert(api_keys).values(
                    id=key_id, name=key_id, owner="", tenant=tenant, role=role,
                    secret_hash="0" * 64, grants=[], created_by="local:setup",
                    created_at=now, changed_at=now,
                )
            )  # fmt: skip
        model_id = conn.execute(
            sa.insert(models).values(
                name="credit-risk", description="", owner="", task="binary", tags={},
                status="active", latest_version=1, created_by=AUTHOR.name, created_at=now,
                updated_at=now, tenant="tenant-a",
            ).returning(models.c.id)
        ).scalar_one()  # fmt: skip
        actors = [
            "key:a1a1a1a1a1a1a1a1",
            "key:b1b1b1b1b1b1b1b1",
            "key:anonymous",
            "local:alice",
            "key:ffffffffffffffff",
        ]
        for actor in actors:
            conn.execute(
                sa.insert(approvals).values(
                    model_id=model_id, version=1, decision="approved", note=NOTE,
                    actor=actor, at=now,
                )
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(approvals.c.actor, approvals.c.tenant, approvals.c.role).order_by(
                approvals.c.id
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("key:a1a1a1a1a1a1a1a1", "tenant-a", "validator"),
        ("key:b1b1b1b1b1b1b1b1", "tenant-b", "validator"),  # kept, but never counts
        ("key:anonymous", "default", "admin"),
        ("local:alice", "default", "admin"),
        ("key:ffffffffffffffff", None, None),  # nobody can vouch for it: never counts
    ]
