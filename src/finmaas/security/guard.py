"""The data plane's gate: authenticate, authorise, limit, meter — with no database read.

Keys and model policies live in an in-memory :class:`AccessSnapshot` that a
background task re-reads every ``access_refresh_interval`` seconds, so a
revoked key stops working on every worker within that bound (expiry is
checked against the clock on every request).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from finmaas.background import cancel, every
from finmaas.config import Settings
from finmaas.errors import FinmaasError, Forbidden, NotFound, Unauthenticated
from finmaas.registry import MonitoringPolicy, Registry
from finmaas.registry.key_store import AccessSnapshot, KeyStore, ModelPolicy
from finmaas.registry.usage import UsageStore
from finmaas.security.key_secrets import PREFIX
from finmaas.security.limits import Limiter, LocalLimiter, RedisLimiter
from finmaas.security.policy import ANONYMOUS_KEY, Principal, allowed_verbs, principal_of
from finmaas.security.usage import UsageMeter

_DEFAULT_MONITORING = MonitoringPolicy()

log = logging.getLogger("finmaas.security")

_BEARER = b"bearer "
_PREFIX = PREFIX.encode()
_ID_END = len(_PREFIX) + 16


@dataclass(frozen=True, slots=True)
class _Entry:
    """A key as the request path needs it: principal, digest, expiry as a timestamp."""

    principal: Principal
    digest: bytes
    revoked: bool
    expires: float


MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
INVALID_KEY = "invalid API key"


class Guard:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        limiter: Limiter | None = None,
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.auth = not settings.insecure_no_auth
        self.keys = KeyStore(registry)
        self.meter = UsageMeter(
            UsageStore(registry), self.keys, interval=settings.usage_flush_interval
        )
        if limiter is None:
            limiter = (
                RedisLimiter(settings.redis_url)
                if settings.redis_url
                else LocalLimiter(share=1 / max(1, workers))
            )
        self.limiter = limiter
        self.snapshot = AccessSnapshot()
        self._entries: dict[bytes, _Entry] = {}
        self._verbs: dict[tuple[str, str], frozenset[str]] = {}
        self._anonymous = principal_of(ANONYMOUS_KEY, "")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        await self.meter.start()
        self._task = every(
            self.settings.access_refresh_interval,
            self.refresh,
            name="finmaas-access-watch",
            log=log,
            failed="key refresh failed",
            # keep the last snapshot: revocations wait, nothing opens
            expected=FinmaasError,
            warning="could not refresh keys: %s",
        )

    async def close(self) -> None:
        await cancel(self._task)
        await self.meter.close()
        await self.limiter.close()

    async def refresh(self) -> None:
        snapshot = await asyncio.to_thread(self.keys.snapshot)
        entries = {
            key.id.encode(): _Entry(
                principal_of(key, ""),
                bytes.fromhex(key.secret_hash),
                key.revoked_at is not None,
                key.expires_at.timestamp() if key.expires_at is not None else float("inf"),
            )
            for key in snapshot.keys.values()
        }
        self.snapshot, self._entries, self._verbs = snapshot, entries, {}

    # -- the request path ------------------------------------------------------

    def authenticate(self, headers: dict[bytes, bytes]) -> Principal:
        """The caller behind the request's key (``Principal.at`` adds where it came from)."""
        if not self.auth:
            return self._anonymous
        raw = headers.get(b"authorization")
        if raw is not None:
            if raw[:7].lower() != _BEARER:
                raise Unauthenticated("unsupported authorization scheme: use 'Bearer <key>'")
            token = raw[7:].strip()
        else:
            token = headers.get(b"x-api-key", b"").strip()
            if not token:
                raise Unauthenticated(MISSING_KEY)
        entry = self._entries.get(token[len(_PREFIX) : _ID_END])
        if (
            entry is None
            or token[:4] != _PREFIX
            or not hmac.compare_digest(hashlib.sha256(token).digest(), entry.digest)
        ):
            raise Unauthenticated(INVALID_KEY)
        if entry.revoked:
            raise Unauthenticated("API key was revoked")
        if entry.expires <= time.time():
            raise Unauthenticated("API key has expired")
        return entry.principal

    def authorize(self, principal: Principal, model: str, verb: str) -> None:
        """Let ``principal`` use ``verb`` on ``model``; an invisible model is 'not found'."""
        cached = (principal.key.id, model)
        verbs = self._verbs.get(cached)
        if verbs is None:
            verbs = allowed_verbs(principal.key, model, self.snapshot.models.get(model))
            if len(self._verbs) < 100_000:  # bounded: names come from requests
                self._verbs[cached] = verbs
        if verb in verbs:
            return
        if not verbs:
            raise NotFound(f"model {model!r} not found")
        raise Forbidden(f"this key may not {verb} model {model!r}")

    def visible(self, principal: Principal, names: list[str]) -> list[str]:
        models = self.snapshot.models
        return [n for n in names if allowed_verbs(principal.key, n, models.get(n))]

    async def admit(self, principal: Principal, rows: int) -> None:
        key = principal.key
        if key.requests_per_minute or key.rows_per_minute or key.monthly_quota is not None:
            await self.limiter.admit(key, rows, self.meter.month_rows(key.id))

    def cap(self, model: str) -> int | None:
        policy = self.snapshot.models.get(model)
        return None if policy is None else policy.max_concurrency

    def policy(self, model: str) -> ModelPolicy | None:
        """The model's tenant, cap and monitoring policy, as of the last refresh (≤ 0.5 s)."""
        return self.snapshot.models.get(model)

    def monitoring(self, model: str) -> MonitoringPolicy:
        policy = self.snapshot.models.get(model)
        return _DEFAULT_MONITORING if policy is None else policy.monitoring

    def record(
        self, principal: Principal, model: str, version: int, rows: int, ok: bool, started: float
    ) -> None:
        latency_us = int((time.perf_counter() - started) * 1e6)
        self.meter.record(principal.key, model, version, rows, ok, latency_us)
