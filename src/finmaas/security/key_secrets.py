"""API key secrets: made here, shown once, stored only as a sha256 digest.

A key reads ``fmk_<id>_<secret>``: the 16-hex-digit id finds the record in
the cache without a scan, and the 256-bit random secret makes a fast hash
safe (a slow password hash guards low-entropy passwords; a key has none to
guard, and a slow hash would cost every request). Digests are compared with
:func:`hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from finmaas.actor import DEFAULT_TENANT
from finmaas.errors import Conflict, Invalid
from finmaas.registry import fields
from finmaas.registry.key_store import Grant, KeyRecord, KeyStore
from finmaas.registry.names import check_tenant
from finmaas.registry.registry import Who
from finmaas.security.policy import check_role

PREFIX = "fmk_"
_ID_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class NewSecret:
    key_id: str
    token: str
    """The whole key, shown to its owner once and never stored."""
    secret_hash: str


def new_secret() -> NewSecret:
    key_id = secrets.token_hex(_ID_LENGTH // 2)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewSecret(key_id, token, hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    record: KeyRecord
    token: str
    """The secret, for its owner's eyes once; nothing else keeps it."""


def issue_key(
    store: KeyStore,
    *,
    name: str,
    role: str,
    actor: Who,
    tenant: str = DEFAULT_TENANT,
    owner: str = "",
    grants: tuple[Grant, ...] = (),
    expires_at: datetime | None = None,
    requests_per_minute: int | None = None,
    rows_per_minute: int | None = None,
    monthly_quota: int | None = None,
    tokens_per_minute: int | None = None,
    monthly_token_quota: int | None = None,
) -> IssuedKey:
    """Check the fields, make a secret and record the key (audited)."""
    if not _NAME.fullmatch(name):
        raise Invalid(f"key name {name[:80]!r} must be 1-64 letters, digits, '.', '_' or '-'")
    check_role(role)
    check_tenant(tenant)
    for label, value, most in (
        ("requests per minute", requests_per_minute, 2**31 - 1),
        ("rows per minute", rows_per_minute, 2**31 - 1),
        ("monthly quota", monthly_quota, 10**12),
        ("tokens per minute", tokens_per_minute, 2**31 - 1),
        ("monthly token quota", monthly_token_quota, 10**12),
    ):
        if value is not None and not 1 <= value <= most:
            raise Invalid(f"{label} must be a whole number from 1 to {most}, got {value}")
    if expires_at is not None and expires_at.tzinfo is None:
        raise Invalid("expiry must carry a time zone")
    secret = new_secret()
    record = KeyRecord(
        id=secret.key_id,
        name=name,
        owner=fields.check_text("owner", owner, fields.MAX_ACTOR, one_line=True),
        tenant=tenant,
        role=role,
        secret_hash=secret.secret_hash,
        grants=grants,
        requests_per_minute=requests_per_minute,
        rows_per_minute=rows_per_minute,
        monthly_quota=monthly_quota,
        tokens_per_minute=tokens_per_minute,
        monthly_token_quota=monthly_token_quota,
        expires_at=expires_at,
    )
    return IssuedKey(store.create(record, actor=actor), secret.token)


def rotate_key(store: KeyStore, key_id: str, *, actor: Who) -> IssuedKey:
    """A new secret for the same name, role, tenant, grants and limits; the old key is revoked."""
    old = store.get(key_id)
    if old.revoked_at is not None:
        raise Conflict(f"key {key_id} is revoked; create a new one instead")
    secret = new_secret()
    new = replace(
        old,
        id=secret.key_id,
        secret_hash=secret.secret_hash,
        revoked_at=None,
        revoked_by=None,
        last_used_at=None,
        replaced_by=None,
    )
    return IssuedKey(store.rotate(key_id, new, actor=actor), secret.token)
