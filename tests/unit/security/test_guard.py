"""Guard.authenticate and Guard.authorize against keys in a real registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from finmaas.config import Settings
from finmaas.errors import Forbidden, NotFound, Unauthenticated
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.guard import INVALID_KEY, MISSING_KEY, Guard
from finmaas.security.key_secrets import IssuedKey, issue_key
from finmaas.security.policy import parse_grant


@pytest.fixture
def guard(settings: Settings, registry: Registry) -> Guard:
    return Guard(settings, registry)


def _issue(registry: Registry, name: str = "app", **options: object) -> IssuedKey:
    return issue_key(KeyStore(registry), name=name, role="consumer", actor="local:t", **options)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[bytes, bytes]:
    return {b"authorization": f"Bearer {token}".encode()}


def test_a_key_authenticates_by_either_header(guard: Guard, registry: Registry) -> None:
    issued = _issue(registry)
    asyncio.run(guard.refresh())
    for headers in (
        _bearer(issued.token),
        {b"authorization": f"bearer  {issued.token} ".encode()},
        {b"x-api-key": issued.token.encode()},
    ):
        principal = guard.authenticate(headers)
        assert principal.key.id == issued.record.id
        assert principal.actor.name == f"key:{issued.record.id}"


def test_missing_key_and_other_schemes(guard: Guard) -> None:
    asyncio.run(guard.refresh())
    with pytest.raises(Unauthenticated) as missing:
        guard.authenticate({})
    assert str(missing.value) == MISSING_KEY
    with pytest.raises(Unauthenticated) as basic:
        guard.authenticate({b"authorization": b"Basic dXNlcjpwdw=="})
    assert str(basic.value) == "unsupported authorization scheme: use 'Bearer <key>'"


def _variants(token: str) -> list[str]:
    key_id, secret = token[4:20], token[21:]
    return [
        "",
        "fmk_",
        f"fmk_{key_id}",
        f"fmk_{key_id}_",
        token + "x",
        token[:-1],
        token.upper(),
        f"fmx_{key_id}_{secret}",
        f"fmk_{key_id}-{secret}",
        f"fmk_{key_id}_{secret[::-1]}",
        f"fmk_0123456789abcdef_{secret}",
        f"Bearer {token}",
    ]


def test_every_altered_token_is_invalid(guard: Guard, registry: Registry) -> None:
    issued = _issue(registry)
    asyncio.run(guard.refresh())
    for token in _variants(issued.token):
        headers = {b"x-api-key": token.encode()}
        with pytest.raises(Unauthenticated) as caught:
            guard.authenticate(headers)
        assert str(caught.value) in (INVALID_KEY, MISSING_KEY), token


def test_revoked_and_expired_keys(guard: Guard, registry: Registry) -> None:
    revoked = _issue(registry, "old")
    expired = _issue(registry, "short", expires_at=datetime.now(UTC) + timedelta(seconds=0.3))
    asyncio.run(guard.refresh())
    assert guard.authenticate(_bearer(revoked.token)).key.name == "old"
    KeyStore(registry).revoke(revoked.record.id, actor="local:t")
    assert guard.authenticate(_bearer(revoked.token)).key.name == "old"  # until the refresh
    asyncio.run(guard.refresh())
    with pytest.raises(Unauthenticated) as caught:
        guard.authenticate(_bearer(revoked.token))
    assert str(caught.value) == "API key was revoked"

    deadline = expired.record.expires_at
    assert deadline is not None
    while datetime.now(UTC) <= deadline:
        asyncio.run(asyncio.sleep(0.05))
    with pytest.raises(Unauthenticated) as late:  # expiry needs no refresh
        guard.authenticate(_bearer(expired.token))
    assert str(late.value) == "API key has expired"


def test_authorize_hides_what_a_key_may_not_see(guard: Guard, registry: Registry) -> None:
    issued = _issue(registry, grants=(parse_grant("credit-*:metadata"),))
    asyncio.run(guard.refresh())
    principal = guard.authenticate(_bearer(issued.token))
    guard.authorize(principal, "credit-risk", "metadata")
    with pytest.raises(Forbidden) as forbidden:
        guard.authorize(principal, "credit-risk", "predict")
    assert str(forbidden.value) == "this key may not predict model 'credit-risk'"
    with pytest.raises(NotFound) as hidden:
        guard.authorize(principal, "fraud", "predict")
    assert str(hidden.value) == "model 'fraud' not found"
    assert guard.visible(principal, ["credit-risk", "fraud", "credit-pd"]) == [
        "credit-risk",
        "credit-pd",
    ]
