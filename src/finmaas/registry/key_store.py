"""Storage of API keys and of the access snapshot the serving path caches.

Only a key's sha256 digest is stored (:mod:`finmaas.security.key_secrets` makes and
checks the secret); this module records, revokes and lists keys, each change
with its audit entry in the same transaction, in the key's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from finmaas.actor import Actor
from finmaas.errors import Conflict, NotFound
from finmaas.registry.records import MonitoringPolicy
from finmaas.registry.registry import Registry, Who, as_actor
from finmaas.registry.tables import api_keys, models


@dataclass(frozen=True)
class Grant:
    """Verbs a key may use on the models whose names match ``models`` (a glob)."""

    models: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    owner: str
    tenant: str
    role: str
    secret_hash: str
    grants: tuple[Grant, ...] = ()
    requests_per_minute: int | None = None
    rows_per_minute: int | None = None
    monthly_quota: int | None = None
    tokens_per_minute: int | None = None
    """Prompt + completion tokens per minute, for generative models (a token bucket)."""
    monthly_token_quota: int | None = None
    """Prompt + completion tokens per calendar month (UTC), for generative models."""
    expires_at: datetime | None = None
    created_by: str = ""
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None
    replaced_by: str | None = None

    def public(self) -> dict[str, Any]:
        """Everything but the hash, as JSON-ready values (for the API, the CLI and audit)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "tenant": self.tenant,
            "role": self.role,
            "grants": [{"models": g.models, "verbs": list(g.verbs)} for g in self.grants],
            "requests_per_minute": self.requests_per_minute,
            "rows_per_minute": self.rows_per_minute,
            "monthly_quota": self.monthly_quota,
            "tokens_per_minute": self.tokens_per_minute,
            "monthly_token_quota": self.monthly_token_quota,
            "expires_at": _iso(self.expires_at),
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "last_used_at": _iso(self.last_used_at),
            "replaced_by": self.replaced_by,
        }


@dataclass(frozen=True)
class ModelPolicy:
    tenant: str
    max_concurrency: int | None
    monitoring: MonitoringPolicy = field(default_factory=MonitoringPolicy)


@dataclass(frozen=True)
class AccessSnapshot:
    """Every key and every active model's tenant and cap, read in one transaction."""

    keys: dict[str, KeyRecord] = field(default_factory=dict)
    models: dict[str, ModelPolicy] = field(default_factory=dict)


class KeyStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, key: KeyRecord, *, actor: Who) -> KeyRecord:
        with self.registry.write() as conn:
            return self._insert(conn, key, as_actor(actor))

    def _insert(self, conn: Connection, key: KeyRecord, who: Actor) -> KeyRecord:
        now = self.registry.now()
        key = replace(key, created_by=who.name, created_at=now)
        conn.execute(sa.insert(api_keys).values(**_row(key), changed_at=now))
        self.registry.audit(
            conn, who, "key.create", f"key:{key.id}", tenant=key.tenant, after=key.public()
        )
        return key

    def get(self, key_id: str) -> KeyRecord:
        with self.registry.read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings()
            found = row.first()
        if found is None:
            raise NotFound(f"key {key_id[:40]!r} not found")
        return _record(found)

    def list(self, *, tenant: str | None = None, include_revoked: bool = False) -> list[KeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.tenant, api_keys.c.name, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.registry.read() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def revoke(self, key_id: str, *, actor: Who) -> KeyRecord:
        with self.registry.write() as conn:
            return self._revoke(conn, key_id, as_actor(actor), None)

    def _revoke(
        self, conn: Connection, key_id: str, who: Actor, replaced_by: str | None
    ) -> KeyRecord:
        now = self.registry.now()
        row = (
            conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id).with_for_update())
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"key {key_id[:40]!r} not found")
        if row["revoked_at"] is not None:
            raise Conflict(f"key {key_id} is already revoked")
        conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(revoked_at=now, revoked_by=who.name, replaced_by=replaced_by, changed_at=now)
        )
        self.registry.audit(
            conn,
            who,
            "key.rotate" if replaced_by else "key.revoke",
            f"key:{key_id}",
            tenant=row["tenant"],
            before={"revoked_at": None},
            after={"revoked_at": now.isoformat(), "replaced_by": replaced_by},
        )
        updated = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings()
        return _record(updated.one())

    def rotate(self, key_id: str, new: KeyRecord, *, actor: Who) -> KeyRecord:
        """Record ``new`` and revoke ``key_id`` in one transaction: both happen or neither."""
        who = as_actor(actor)
        with self.registry.write() as conn:
            created = self._insert(conn, new, who)
            self._revoke(conn, key_id, who, created.id)
            return created

    def touch(self, last_used: dict[str, datetime]) -> None:
        """Record when keys were last used (from the usage flush, off the request path)."""
        if not last_used:
            return
        with self.registry.write() as conn:
            for key_id, at in last_used.items():
                conn.execute(
                    sa.update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at)
                )

    def snapshot(self) -> AccessSnapshot:
        with self.registry.read() as conn:
            keys = {row["id"]: _record(row) for row in conn.execute(sa.select(api_keys)).mappings()}
            policies = {
                name: ModelPolicy(tenant, cap, MonitoringPolicy.from_json(monitoring))
                for name, tenant, cap, monitoring in conn.execute(
                    sa.select(
                        models.c.name,
                        models.c.tenant,
                        models.c.max_concurrency,
                        models.c.monitoring,
                    ).where(models.c.status == "active")
                )
            }
        return AccessSnapshot(keys, policies)


def _row(key: KeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "owner": key.owner,
        "tenant": key.tenant,
        "role": key.role,
        "secret_hash": key.secret_hash,
        "grants": [{"models": g.models, "verbs": list(g.verbs)} for g in key.grants],
        "requests_per_minute": key.requests_per_minute,
        "rows_per_minute": key.rows_per_minute,
        "monthly_quota": key.monthly_quota,
        "tokens_per_minute": key.tokens_per_minute,
        "monthly_token_quota": key.monthly_token_quota,
        "expires_at": None if key.expires_at is None else key.expires_at.astimezone(UTC),
        "created_by": key.created_by,
        "created_at": key.created_at,
    }


def _record(row: RowMapping) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        tenant=row["tenant"],
        role=row["role"],
        secret_hash=row["secret_hash"],
        grants=tuple(Grant(g["models"], tuple(g["verbs"])) for g in row["grants"] or ()),
        requests_per_minute=row["requests_per_minute"],
        rows_per_minute=row["rows_per_minute"],
        monthly_quota=row["monthly_quota"],
        tokens_per_minute=row["tokens_per_minute"],
        monthly_token_quota=row["monthly_token_quota"],
        expires_at=_utc(row["expires_at"]),
        created_by=row["created_by"],
        created_at=_utc(row["created_at"]),
        revoked_at=_utc(row["revoked_at"]),
        revoked_by=row["revoked_by"],
        last_used_at=_utc(row["last_used_at"]),
        replaced_by=row["replaced_by"],
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
