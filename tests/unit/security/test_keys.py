"""API key secrets: format, parsing, hashing, issuing and rotating (finmaas.security.key_secrets)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.errors import Conflict, Invalid, NotFound
from finmaas.registry import Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.key_store import Grant, KeyStore
from finmaas.registry.tables import api_keys
from finmaas.security.key_secrets import (
    hash_token,
    issue_key,
    new_secret,
    rotate_key,
)

TOKEN = re.compile(r"fmk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
"""``fmk_``, a 16-hex-digit id, ``_``, and 32 random bytes in URL-safe base64."""


@pytest.fixture
def keys(registry: Registry) -> KeyStore:
    return KeyStore(registry)


# -- secrets ------------------------------------------------------------------


def test_new_secret_has_the_documented_format() -> None:
    secret = new_secret()
    match = TOKEN.fullmatch(secret.token)
    assert match is not None, secret.token
    assert match.group(1) == secret.key_id
    assert secret.secret_hash == hashlib.sha256(secret.token.encode()).hexdigest()


def test_new_secrets_are_unique() -> None:
    made = [new_secret() for _ in range(200)]
    assert len({s.key_id for s in made}) == 200
    assert len({s.token for s in made}) == 200


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("fmk_x") == hashlib.sha256(b"fmk_x").hexdigest()
    assert len(hash_token("")) == 64


# -- issuing ------------------------------------------------------------------


def test_issue_key_records_only_the_hash(registry: Registry, keys: KeyStore) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    issued = issue_key(
        keys,
        name="scoring-app",
        role="consumer",
        actor="local:alice",
        tenant="retail",
        owner="team-scoring",
        grants=(Grant("credit-*", ("metadata", "predict")),),
        expires_at=expires,
        requests_per_minute=600,
        rows_per_minute=60_000,
        monthly_quota=1_000_000,
        tokens_per_minute=200_000,
        monthly_token_quota=50_000_000,
    )
    record = issued.record
    match = TOKEN.fullmatch(issued.token)
    assert match is not None
    assert record.id == match.group(1)
    assert record.secret_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert hash_token(issued.token) == record.secret_hash
    assert (record.name, record.role, record.tenant, record.owner) == (
        "scoring-app",
        "consumer",
        "retail",
        "team-scoring",
    )
    assert record.grants == (Grant("credit-*", ("metadata", "predict")),)
    assert (record.requests_per_minute, record.rows_per_minute, record.monthly_quota) == (
        600,
        60_000,
        1_000_000,
    )
    assert (record.tokens_per_minute, record.monthly_token_quota) == (200_000, 50_000_000)
    assert record.expires_at == expires
    assert record.created_by == "local:alice"
    assert record.revoked_at is None
    assert record.replaced_by is None

    assert keys.get(record.id) == record

    # Nothing stored holds the secret: not the key row, not the audit trail.
    secret_part = match.group(2)
    with registry.read() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == record.id)).mappings().one()
    assert row["secret_hash"] == hashlib.sha256(issued.token.encode()).hexdigest()
    for column, value in row.items():
        assert secret_part not in str(value), column
    [entry] = registry.audit_entries(AuditFilter(action="key.create"))
    assert secret_part not in repr(entry)
    assert record.secret_hash not in repr(entry)
    assert "secret_hash" not in entry.after
    assert "secret_hash" not in record.public()


def test_issue_key_defaults(keys: KeyStore) -> None:
    record = issue_key(keys, name="k", role="admin", actor="local:alice").record
    assert (record.tenant, record.owner, record.grants) == ("default", "", ())
    assert (record.requests_per_minute, record.rows_per_minute, record.monthly_quota) == (
        None,
        None,
        None,
    )
    assert (record.tokens_per_minute, record.monthly_token_quota) == (None, None)
    assert record.expires_at is None


def test_issue_key_accepts_the_boundary_values(keys: KeyStore) -> None:
    name = "a" * 64
    record = issue_key(
        keys,
        name=name,
        role="auditor",
        actor="x",
        tenant="t" * 64,
        requests_per_minute=1,
        rows_per_minute=1,
        monthly_quota=10**12,
        tokens_per_minute=2**31 - 1,
        monthly_token_quota=10**12,
    ).record
    assert record.name == name
    assert record.tenant == "t" * 64
    assert keys.get(record.id).monthly_quota == 10**12
    stored = keys.get(record.id)
    assert (stored.tokens_per_minute, stored.monthly_token_quota) == (2**31 - 1, 10**12)
    low = issue_key(
        keys, name="low", role="consumer", actor="x", tokens_per_minute=1, monthly_token_quota=1
    ).record
    assert (low.tokens_per_minute, low.monthly_token_quota) == (1, 1)


@pytest.mark.parametrize("hours", [2, -5])
def test_an_expiry_with_a_utc_offset_keeps_its_instant(
    request: pytest.FixtureRequest, database_url: str, keys: KeyStore, hours: int
) -> None:
    """An expiry given with an offset is stored as the same instant (in UTC)."""
    expires = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=hours)))
    record = issue_key(keys, name="k", role="consumer", actor="a", expires_at=expires).record
    assert record.expires_at == expires
    assert keys.get(record.id).expires_at == expires
    assert keys.snapshot().keys[record.id].expires_at == expires


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"name": "bad name"},
            "key name 'bad name' must be 1-64 letters, digits, '.', '_' or '-'",
        ),
        ({"name": ""}, "key name '' must be 1-64 letters, digits, '.', '_' or '-'"),
        (
            {"name": "a" * 65},
            f"key name {'a' * 65!r} must be 1-64 letters, digits, '.', '_' or '-'",
        ),
        (
            {"name": "x" * 100},
            f"key name {'x' * 80!r} must be 1-64 letters, digits, '.', '_' or '-'",
        ),
        ({"name": "a/b"}, "key name 'a/b' must be 1-64 letters, digits, '.', '_' or '-'"),
        (
            {"role": "root"},
            "role must be one of admin, developer, validator, consumer, auditor, got 'root'",
        ),
        (
            {"role": "Admin"},
            "role must be one of admin, developer, validator, consumer, auditor, got 'Admin'",
        ),
        (
            {"tenant": "Acme"},
            "tenant 'Acme' must be 1-64 lowercase letters, digits, '.', '_' or '-'",
        ),
        ({"tenant": ""}, "tenant '' must be 1-64 lowercase letters, digits, '.', '_' or '-'"),
        (
            {"tenant": "-acme"},
            "tenant '-acme' must be 1-64 lowercase letters, digits, '.', '_' or '-'",
        ),
        (
            {"requests_per_minute": 0},
            "requests per minute must be a whole number from 1 to 2147483647, got 0",
        ),
        (
            {"requests_per_minute": -1},
            "requests per minute must be a whole number from 1 to 2147483647, got -1",
        ),
        (
            {"rows_per_minute": 0},
            "rows per minute must be a whole number from 1 to 2147483647, got 0",
        ),
        (
            {"rows_per_minute": -50},
            "rows per minute must be a whole number from 1 to 2147483647, got -50",
        ),
        (
            {"monthly_quota": 0},
            "monthly quota must be a whole number from 1 to 1000000000000, got 0",
        ),
        (
            {"monthly_quota": 10**12 + 1},
            "monthly quota must be a whole number from 1 to 1000000000000, got 1000000000001",
        ),
        (
            {"tokens_per_minute": 0},
            "tokens per minute must be a whole number from 1 to 2147483647, got 0",
        ),
        (
            {"tokens_per_minute": -1},
            "tokens per minute must be a whole number from 1 to 2147483647, got -1",
        ),
        (
            {"tokens_per_minute": 2**31},
            "tokens per minute must be a whole number from 1 to 2147483647, got 2147483648",
        ),
        (
            {"monthly_token_quota": 0},
            "monthly token quota must be a whole number from 1 to 1000000000000, got 0",
        ),
        (
            {"monthly_token_quota": 10**12 + 1},
            "monthly token quota must be a whole number from 1 to 1000000000000, got 1000000000001",
        ),
        (
            {"expires_at": datetime(2030, 1, 1)},  # naive
            "expiry must carry a time zone",
        ),
    ],
)
def test_issue_key_refuses_bad_fields(
    registry: Registry, keys: KeyStore, spec: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"name": "k", "role": "consumer", "actor": "local:alice"}
    arguments.update(spec)
    with pytest.raises(Invalid) as err:
        issue_key(keys, **arguments)  # type: ignore[arg-type]
    assert str(err.value) == message
    assert keys.list(include_revoked=True) == []
    assert registry.audit_entries() == []


def test_issue_key_refuses_an_overlong_owner(keys: KeyStore) -> None:
    with pytest.raises(Invalid):
        issue_key(keys, name="k", role="consumer", actor="a", owner="o" * 201)
    assert keys.list(include_revoked=True) == []


def test_requests_per_minute_out_of_the_column_range(
    request: pytest.FixtureRequest, database_url: str, keys: KeyStore
) -> None:
    """Per-minute limits fit the 32-bit columns: larger ones are refused before the database."""
    with pytest.raises(Invalid) as err:
        issue_key(keys, name="big", role="consumer", actor="a", requests_per_minute=3_000_000_000)
    assert str(err.value) == (
        "requests per minute must be a whole number from 1 to 2147483647, got 3000000000"
    )


# -- rotating -----------------------------------------------------------------


def test_rotate_key_revokes_the_old_key_and_keeps_its_settings(
    registry: Registry, keys: KeyStore
) -> None:
    old = issue_key(
        keys,
        name="scoring-app",
        role="developer",
        actor="local:alice",
        tenant="retail",
        owner="team-scoring",
        grants=(Grant("credit-*", ("predict",)), Grant("fraud", ("metadata",))),
        expires_at=datetime(2031, 6, 1, tzinfo=UTC),
        requests_per_minute=10,
        rows_per_minute=1000,
        monthly_quota=50_000,
        tokens_per_minute=90_000,
        monthly_token_quota=10**9,
    )
    rotator = Actor(name="key:admin1", role="admin", origin="10.0.0.7")
    new = rotate_key(keys, old.record.id, actor=rotator)

    assert new.token != old.token
    assert new.record.id != old.record.id
    assert TOKEN.fullmatch(new.token) is not None
    assert new.token.startswith(f"fmk_{new.record.id}_")
    assert hash_token(new.token) == new.record.secret_hash
    assert hash_token(old.token) != new.record.secret_hash

    kept = (
        "name",
        "owner",
        "tenant",
        "role",
        "grants",
        "requests_per_minute",
        "rows_per_minute",
        "monthly_quota",
        "tokens_per_minute",
        "monthly_token_quota",
        "expires_at",
    )
    for field in kept:
        assert getattr(new.record, field) == getattr(old.record, field), field
    assert new.record.created_by == "key:admin1"
    assert (new.record.revoked_at, new.record.revoked_by, new.record.replaced_by) == (
        None,
        None,
        None,
    )
    assert keys.get(new.record.id) == new.record

    revoked = keys.get(old.record.id)
    assert revoked.revoked_at is not None
    assert revoked.revoked_by == "key:admin1"
    assert revoked.replaced_by == new.record.id
    assert [k.id for k in keys.list()] == [new.record.id]

    actions = [(e.action, e.target) for e in registry.audit_entries()]
    assert actions == [
        ("key.create", f"key:{old.record.id}"),
        ("key.create", f"key:{new.record.id}"),
        ("key.rotate", f"key:{old.record.id}"),
    ]


def test_rotating_a_revoked_key_is_a_conflict(registry: Registry, keys: KeyStore) -> None:
    old = issue_key(keys, name="k", role="consumer", actor="a")
    new = rotate_key(keys, old.record.id, actor="a")
    entries = len(registry.audit_entries())

    with pytest.raises(Conflict) as err:
        rotate_key(keys, old.record.id, actor="a")
    assert str(err.value) == f"key {old.record.id} is revoked; create a new one instead"

    keys.revoke(new.record.id, actor="a")
    with pytest.raises(Conflict) as err:
        rotate_key(keys, new.record.id, actor="a")
    assert str(err.value) == f"key {new.record.id} is revoked; create a new one instead"

    assert len(keys.list(include_revoked=True)) == 2
    assert len(registry.audit_entries()) == entries + 1  # only the revoke


def test_rotating_an_unknown_key_is_not_found(keys: KeyStore) -> None:
    with pytest.raises(NotFound) as err:
        rotate_key(keys, "0123456789abcdef", actor="a")
    assert str(err.value) == "key '0123456789abcdef' not found"
    assert keys.list(include_revoked=True) == []
