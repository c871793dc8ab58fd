"""KeyStore: recording, listing, revoking and rotating API keys, each change audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.errors import Conflict, NotFound
from finmaas.registry import NewModel, Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.key_store import AccessSnapshot, Grant, KeyRecord, KeyStore, ModelPolicy
from finmaas.registry.records import ModelUpdate
from finmaas.security.key_secrets import new_secret
from tests.integration.registry.helpers import new_version

T0 = datetime(2026, 5, 4, 9, 30, 15, 123456, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(registry: Registry, clock: Clock) -> Registry:
    """The fixture's database, written with a controlled clock."""
    return Registry(registry.engine, clock=clock)


@pytest.fixture
def keys(timed: Registry) -> KeyStore:
    return KeyStore(timed)


def record(
    name: str, *, tenant: str = "default", role: str = "consumer", **extra: object
) -> KeyRecord:
    secret = new_secret()
    return KeyRecord(
        id=secret.key_id,
        name=name,
        owner=f"owner-of-{name}",
        tenant=tenant,
        role=role,
        secret_hash=secret.secret_hash,
        **extra,  # type: ignore[arg-type]
    )


def test_create_and_get_round_trip(keys: KeyStore, timed: Registry) -> None:
    new = record(
        "scoring",
        tenant="retail",
        grants=(Grant("credit-*", ("predict",)), Grant("fraud", ("explain", "metadata"))),
        requests_per_minute=60,
        rows_per_minute=6000,
        monthly_quota=10**10,
        tokens_per_minute=2_000_000,
        monthly_token_quota=10**11,
        expires_at=T0 + timedelta(days=90),
        created_by="ignored",
    )
    created = keys.create(new, actor="local:alice")
    assert created.created_by == "local:alice"
    assert created.created_at == T0
    assert keys.get(new.id) == created
    assert created.grants == (
        Grant("credit-*", ("predict",)),
        Grant("fraud", ("explain", "metadata")),
    )
    assert created.monthly_quota == 10**10
    assert (created.tokens_per_minute, created.monthly_token_quota) == (2_000_000, 10**11)
    assert created.public() == {
        "id": new.id,
        "name": "scoring",
        "owner": "owner-of-scoring",
        "tenant": "retail",
        "role": "consumer",
        "grants": [
            {"models": "credit-*", "verbs": ["predict"]},
            {"models": "fraud", "verbs": ["explain", "metadata"]},
        ],
        "requests_per_minute": 60,
        "rows_per_minute": 6000,
        "monthly_quota": 10**10,
        "tokens_per_minute": 2_000_000,
        "monthly_token_quota": 10**11,
        "expires_at": "2026-08-02T09:30:15.123456+00:00",
        "created_by": "local:alice",
        "created_at": "2026-05-04T09:30:15.123456+00:00",
        "revoked_at": None,
        "revoked_by": None,
        "last_used_at": None,
        "replaced_by": None,
    }


def test_create_is_audited_without_the_hash_in_the_keys_tenant(
    keys: KeyStore, timed: Registry
) -> None:
    admin = Actor(name="key:aaaaaaaaaaaaaaaa", role="admin", tenant="ops", origin="10.9.8.7")
    created = keys.create(record("k", tenant="retail"), actor=admin)
    [entry] = timed.audit_entries()
    assert (entry.action, entry.target, entry.actor, entry.tenant, entry.origin) == (
        "key.create",
        f"key:{created.id}",
        "key:aaaaaaaaaaaaaaaa",
        "retail",  # the key's tenant, not the admin's
        "10.9.8.7",
    )
    assert entry.at == T0
    assert entry.before is None
    assert entry.after == created.public()
    assert created.secret_hash not in repr(entry)


def test_a_duplicate_id_is_refused_and_not_audited(keys: KeyStore, timed: Registry) -> None:
    first = keys.create(record("k"), actor="a")
    with pytest.raises(sa.exc.IntegrityError):
        keys.create(replace(record("other"), id=first.id), actor="a")
    assert [k.name for k in keys.list(include_revoked=True)] == ["k"]
    assert len(timed.audit_entries()) == 1
    assert timed.verify_audit().ok


def test_get_unknown_key(keys: KeyStore) -> None:
    with pytest.raises(NotFound) as err:
        keys.get("0123456789abcdef")
    assert str(err.value) == "key '0123456789abcdef' not found"
    with pytest.raises(NotFound) as err:
        keys.get("x" * 100)
    assert str(err.value) == f"key {'x' * 40!r} not found"


def test_list_orders_filters_and_hides_revoked(keys: KeyStore) -> None:
    b_retail = keys.create(record("b", tenant="retail"), actor="a")
    a_retail = keys.create(record("a", tenant="retail"), actor="a")
    z_default = keys.create(record("z"), actor="a")
    c_corp = keys.create(record("c", tenant="corporate"), actor="a")
    keys.revoke(a_retail.id, actor="a")

    assert [k.id for k in keys.list()] == [c_corp.id, z_default.id, b_retail.id]
    assert [k.id for k in keys.list(include_revoked=True)] == [
        c_corp.id,
        z_default.id,
        a_retail.id,
        b_retail.id,
    ]
    assert [k.id for k in keys.list(tenant="retail")] == [b_retail.id]
    assert [k.id for k in keys.list(tenant="retail", include_revoked=True)] == [
        a_retail.id,
        b_retail.id,
    ]
    assert keys.list(tenant="nobody", include_revoked=True) == []


def test_revoke(keys: KeyStore, timed: Registry, clock: Clock) -> None:
    created = keys.create(record("k"), actor="a")
    clock.now = T0 + timedelta(hours=1)
    revoked = keys.revoke(created.id, actor="local:bob")
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert (revoked.revoked_by, revoked.replaced_by) == ("local:bob", None)
    assert keys.get(created.id) == revoked
    entry = timed.audit_entries()[-1]
    assert (entry.action, entry.target, entry.actor) == (
        "key.revoke",
        f"key:{created.id}",
        "local:bob",
    )
    assert entry.before == {"revoked_at": None}
    assert entry.after == {"revoked_at": "2026-05-04T10:30:15.123456+00:00", "replaced_by": None}

    with pytest.raises(Conflict) as err:
        keys.revoke(created.id, actor="local:bob")
    assert str(err.value) == f"key {created.id} is already revoked"
    assert keys.get(created.id) == revoked
    assert len(timed.audit_entries()) == 2

    with pytest.raises(NotFound) as missing:
        keys.revoke("0123456789abcdef", actor="a")
    assert str(missing.value) == "key '0123456789abcdef' not found"
    assert len(timed.audit_entries()) == 2
    assert timed.verify_audit().ok


def test_rotate_records_the_new_key_and_revokes_the_old(keys: KeyStore, timed: Registry) -> None:
    old = keys.create(record("k", requests_per_minute=5), actor="a")
    replacement = record("k", requests_per_minute=5)
    new = keys.rotate(old.id, replacement, actor="local:carol")
    assert new.id == replacement.id
    assert new.created_by == "local:carol"
    retired = keys.get(old.id)
    assert (retired.revoked_by, retired.replaced_by) == ("local:carol", new.id)
    assert retired.revoked_at == T0
    actions = [(e.action, e.target) for e in timed.audit_entries()]
    assert actions == [
        ("key.create", f"key:{old.id}"),
        ("key.create", f"key:{new.id}"),
        ("key.rotate", f"key:{old.id}"),
    ]
    assert timed.audit_entries()[-1].after == {
        "revoked_at": "2026-05-04T09:30:15.123456+00:00",
        "replaced_by": new.id,
    }
    assert timed.verify_audit().ok


def test_touch_records_last_use(keys: KeyStore, timed: Registry) -> None:
    first = keys.create(record("a"), actor="a")
    second = keys.create(record("b"), actor="a")
    keys.touch({})
    keys.touch({first.id: T0 + timedelta(minutes=5), "ffffffffffffffff": T0})
    assert keys.get(first.id).last_used_at == T0 + timedelta(minutes=5)
    assert keys.get(second.id).last_used_at is None
    assert len(timed.audit_entries()) == 2  # use is not a control-plane change


def test_snapshot_has_every_key_and_active_models(keys: KeyStore, timed: Registry) -> None:
    assert keys.snapshot() == AccessSnapshot()
    live = keys.create(record("live", tenant="retail"), actor="a")
    gone = keys.create(record("gone"), actor="a")
    keys.revoke(gone.id, actor="a")

    timed.publish_version(
        "credit-risk", new_version("a"), actor="a", model_spec=NewModel(tenant="retail")
    )
    timed.publish_version("fraud", new_version("b"), actor="a")
    timed.publish_version("old", new_version("c"), actor="a", model_spec=NewModel(tenant="retail"))
    timed.update_model("credit-risk", ModelUpdate(max_concurrency=8), actor="a")
    timed.update_model("fraud", ModelUpdate(max_concurrency=3), actor="a")
    timed.update_model("fraud", ModelUpdate(max_concurrency=0), actor="a")  # 0 removes the cap
    timed.archive_model("old", actor="a")

    snapshot = keys.snapshot()
    assert snapshot.keys == {live.id: keys.get(live.id), gone.id: keys.get(gone.id)}
    assert snapshot.keys[gone.id].revoked_at is not None  # the guard refuses it by itself
    assert snapshot.models == {
        "credit-risk": ModelPolicy("retail", 8),
        "fraud": ModelPolicy("default", None),
    }


def test_every_key_write_is_chained(keys: KeyStore, timed: Registry) -> None:
    first = keys.create(record("a"), actor="a")
    second = keys.create(record("b"), actor="a")
    keys.revoke(first.id, actor="a")
    keys.rotate(second.id, record("b"), actor="a")
    timed.publish_version("m", new_version(), actor="a")
    entries = timed.audit_entries(AuditFilter(action="key.*"))
    assert [e.action for e in entries] == [
        "key.create",
        "key.create",
        "key.revoke",
        "key.create",
        "key.rotate",
    ]
    report = timed.verify_audit()
    assert (report.ok, report.checked) == (True, 7)


def test_migration_0008_gives_existing_keys_no_token_limits(database_url: str) -> None:
    from finmaas.registry.database import create_engine
    from finmaas.registry.migrate import upgrade
    from finmaas.registry.tables import api_keys

    engine = create_engine(database_url)
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(api_keys).values(
                id="a1a1a1a1a1a1a1a1", name="old", owner="", tenant="default",
                role="consumer", secret_hash="0" * 64, grants=[], requests_per_minute=60,
                created_by="local:setup", created_at=T0, changed_at=T0,
            )
        )  # fmt: skip
    assert upgrade(engine) == "0007"
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).mappings().one()
    engine.dispose()
    assert (row["requests_per_minute"], row["tokens_per_minute"]) == (60, None)
    assert row["monthly_token_quota"] is None
