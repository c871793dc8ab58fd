"""Rate limits, monthly quotas and per-model concurrency caps.

Per key: a token bucket of requests per minute and one of rows per minute
(each holds at most a minute's worth and refills continuously), and a monthly
quota of predicted rows. Per model: a cap on requests in flight.

For generative models, per key: a bucket of tokens per minute (prompt +
completion) and a monthly token quota. A generation's size is known only once
it ends, so :meth:`Limiter.admit_tokens` reserves an estimate before the
request goes upstream (the prompt's tokens + ``max_tokens``) and
:meth:`Limiter.settle_tokens` replaces it with the engine's own count once it
is known: the unused part goes back to the bucket, an overrun is charged and
may leave the bucket below zero, so the key's next requests wait until it has
refilled.

Two backends with one interface:

* :class:`LocalLimiter` (the embedded default) keeps state in the process.
  With ``N`` workers each enforces ``1/N`` of every limit, so a key never gets
  more than its limit in all, though a client holding one connection (served
  by one worker) may get only its share; quotas are checked against the
  metered month-to-date total, which may trail by the requests in flight.
* :class:`RedisLimiter` keeps state in Redis and decides each request in one
  Lua script (atomic, Redis's own clock unless a test passes one), so limits,
  quotas and caps are exact across every worker and host.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from finmaas.errors import Invalid, RateLimited, Unavailable
from finmaas.registry.key_store import KeyRecord


class Limiter(Protocol):
    async def admit(self, key: KeyRecord, rows: int, month_used: int) -> None:
        """Count one request of ``rows`` rows against ``key``'s limits, or raise RateLimited."""

    async def enter(self, model: str, cap: int) -> str:
        """Take one of ``cap`` in-flight slots of ``model`` (a token for :meth:`leave`)."""

    async def leave(self, model: str, token: str) -> None: ...

    async def admit_tokens(
        self, key: KeyRecord, estimate: int, month_used: int
    ) -> TokenReservation:
        """Count one generative request against ``key``'s requests per minute and reserve
        ``estimate`` tokens against its tokens per minute and monthly token quota (whose
        month-to-date total is ``month_used``), all or nothing, or raise RateLimited."""

    async def settle_tokens(
        self, key: KeyRecord, reservation: TokenReservation, actual: int
    ) -> bool:
        """Replace the estimate ``reservation`` took with the ``actual`` tokens used.

        The unused part returns to the bucket; an overrun is charged, and may take the
        bucket below zero, so the key's next requests wait until it has refilled. True
        when this call settled the reservation; False (and nothing changes) when it was
        already settled, has lapsed (:data:`RESERVATION_TTL_S`), belongs to another key
        or was never issued: settling twice is harmless.
        """

    async def close(self) -> None: ...


RESERVATION_TTL_S = 3600
"""A reservation not settled within this long (a crashed worker) lapses: its estimate
stays charged and settling it later changes nothing."""


@dataclass(frozen=True, slots=True)
class TokenReservation:
    """What :meth:`Limiter.admit_tokens` reserved for one generative request.

    Only ``id`` (128 random bits) is read back: the amount is taken from the limiter's
    own record of the reservation, so a copy with a larger ``tokens``, a made-up id or
    another key's reservation credits nothing, and the record is removed by the first
    settlement, so a second one does nothing.
    """

    id: str
    key_id: str
    tokens: int
    """The estimate reserved (for the caller's information)."""


@dataclass(slots=True)
class _Held:
    key_id: str
    tokens: int
    bucket: bool
    """Whether ``tokens`` were taken from a tokens-per-minute bucket."""
    expires: float


MAX_TOKEN_COUNT = 10**9
"""The largest estimate or actual count accepted (far above any context window)."""


def check_token_count(label: str, value: object) -> int:
    """``value`` as a count of tokens, or Invalid naming ``label``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise Invalid(f"{label} must be a whole number from 0 to {MAX_TOKEN_COUNT}, got {value!r}")
    return value


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class LocalLimiter:
    """In-process limits; ``share`` is this worker's fraction of every limit."""

    def __init__(self, *, share: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.share = share
        self.clock = clock
        self._requests: dict[str, _Bucket] = {}
        self._rows: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._held: dict[str, _Held] = {}
        self._in_flight: dict[str, int] = {}

    def _check(
        self,
        buckets: dict[str, _Bucket],
        key_id: str,
        limit: int | None,
        amount: int,
        now: float,
        refusals: _Refusals,
    ) -> float | None:
        """What ``key_id``'s bucket would hold after taking ``amount`` (None without a
        limit), or RateLimited, taking nothing; the caller stores the value once every
        check of the request has passed."""
        if not limit:
            return None
        if amount > limit:
            raise refusals.at_once(amount, limit)
        capacity = max(1.0, limit * self.share)
        left = self._take(buckets, key_id, capacity, amount, now)
        # More than this worker's share passes on a full bucket and leaves it in debt, so
        # the rate over time stays within the share.
        if left < 0 and not (amount > capacity and left + amount >= capacity):
            raise refusals.too_many(limit, -left * 60 / capacity)
        return left

    async def admit(self, key: KeyRecord, rows: int, month_used: int) -> None:
        now = self.clock()
        requests = self._check(self._requests, key.id, key.requests_per_minute, 1, now, _REQUESTS)
        rows_bucket = self._check(self._rows, key.id, key.rows_per_minute, rows, now, _ROWS)
        if key.monthly_quota is not None and month_used + rows > key.monthly_quota:
            raise quota_exceeded(key, month_used, rows)
        # Only now that every check passed are the tokens taken.
        if requests is not None:
            self._requests[key.id].tokens = requests
        if rows_bucket is not None:
            self._rows[key.id].tokens = rows_bucket

    async def admit_tokens(
        self, key: KeyRecord, estimate: int, month_used: int
    ) -> TokenReservation:
        check_token_count("token estimate", estimate)
        now = self.clock()
        self._lapse(now)
        requests = self._check(self._requests, key.id, key.requests_per_minute, 1, now, _REQUESTS)
        tokens = self._check(self._tokens, key.id, key.tokens_per_minute, estimate, now, _TOKENS)
        quota = key.monthly_token_quota
        if quota is not None and month_used + estimate > quota:
            raise token_quota_exceeded(key, month_used, estimate)
        if requests is not None:
            self._requests[key.id].tokens = requests
        if tokens is not None:
            self._tokens[key.id].tokens = tokens
        reservation = TokenReservation(uuid.uuid4().hex, key.id, estimate)
        self._held[reservation.id] = _Held(
            key.id, estimate, tokens is not None, now + RESERVATION_TTL_S
        )
        return reservation

    async def settle_tokens(
        self, key: KeyRecord, reservation: TokenReservation, actual: int
    ) -> bool:
        check_token_count("actual tokens", actual)
        now = self.clock()
        self._lapse(now)
        held = self._held.get(reservation.id)
        if held is None or held.key_id != key.id:
            return False
        del self._held[reservation.id]
        if held.bucket and key.tokens_per_minute:
            capacity = max(1.0, key.tokens_per_minute * self.share)
            level = self._take(self._tokens, key.id, capacity, 0, now)
            self._tokens[key.id].tokens = min(capacity, level + held.tokens - actual)
        return True

    def _lapse(self, now: float) -> None:
        """Forget reservations past their time (kept in the order they were made)."""
        while self._held:
            oldest = next(iter(self._held))
            if self._held[oldest].expires > now:
                return
            del self._held[oldest]

    @staticmethod
    def _take(
        buckets: dict[str, _Bucket], key_id: str, capacity: float, cost: float, now: float
    ) -> float:
        """Tokens left after taking ``cost`` (negative: how many are missing)."""
        bucket = buckets.get(key_id)
        if bucket is None:
            bucket = buckets[key_id] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * capacity / 60)
        bucket.updated = now
        return bucket.tokens - cost

    async def enter(self, model: str, cap: int) -> str:
        share = max(1, math.floor(cap * self.share))
        running = self._in_flight.get(model, 0)
        if running >= share:
            raise at_capacity(model, cap)
        self._in_flight[model] = running + 1
        return ""

    async def leave(self, model: str, token: str) -> None:
        self._in_flight[model] -= 1

    async def close(self) -> None:
        return None


_ADMIT = """
local now = tonumber(ARGV[7])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function level(key, cap)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or cap
  local ts = tonumber(v[2]) or now
  return math.min(cap, tokens + math.max(0, now - ts) * cap / 60000)
end
local rpm, rowspm = tonumber(ARGV[1]), tonumber(ARGV[2])
local rows, quota = tonumber(ARGV[3]), tonumber(ARGV[4])
local requests, rowtokens = 0, 0
if rpm > 0 then
  requests = level(KEYS[1], rpm)
  if requests < 1 then return {1, math.ceil((1 - requests) * 60000 / rpm), 0} end
end
if rowspm > 0 then
  rowtokens = level(KEYS[2], rowspm)
  if rowtokens < rows then return {2, math.ceil((rows - rowtokens) * 60000 / rowspm), 0} end
end
if quota >= 0 then
  redis.call('SET', KEYS[3], ARGV[5], 'NX', 'EX', ARGV[6])
  local used = tonumber(redis.call('GET', KEYS[3]))
  if used + rows > quota then return {3, 0, used} end
  redis.call('INCRBY', KEYS[3], rows)
end
if rpm > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(requests - 1), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], 120000)
end
if rowspm > 0 then
  redis.call('HSET', KEYS[2], 'tokens', tostring(rowtokens - rows), 'ts', now)
  redis.call('PEXPIRE', KEYS[2], 120000)
end
return {0, 0, 0}
"""

_BUCKET_LUA = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function level(key, cap)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or cap
  local ts = tonumber(v[2]) or now
  return math.min(cap, tokens + math.max(0, now - ts) * cap / 60000)
end
local function save(key, tokens, cap)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', now)
  -- kept until it would be full again (a debt may take longer than a minute)
  redis.call('PEXPIRE', key, math.max(120000, math.ceil((cap - tokens) * 60000 / cap) + 60000))
end
"""

# KEYS: requests bucket, tokens bucket, month's token counter, reservation.
# ARGV: now (ms, -1: Redis's clock), requests/min, tokens/min, estimate, quota (-1: none),
# month used, counter ttl (s), reservation ttl (ms).
_ADMIT_TOKENS = (
    _BUCKET_LUA
    + """
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local estimate, quota = tonumber(ARGV[4]), tonumber(ARGV[5])
local requests, tokens = 0, 0
if rpm > 0 then
  requests = level(KEYS[1], rpm)
  if requests < 1 then return {1, math.ceil((1 - requests) * 60000 / rpm), 0} end
end
if tpm > 0 then
  tokens = level(KEYS[2], tpm)
  if tokens < estimate then return {2, math.ceil((estimate - tokens) * 60000 / tpm), 0} end
end
local counted = 0
if quota >= 0 then
  redis.call('SET', KEYS[3], ARGV[6], 'NX', 'EX', ARGV[7])
  local used = tonumber(redis.call('GET', KEYS[3]))
  if used + estimate > quota then return {3, 0, used} end
  redis.call('INCRBY', KEYS[3], estimate)
  counted = 1
end
if rpm > 0 then save(KEYS[1], requests - 1, rpm) end
local bucket = 0
if tpm > 0 then
  save(KEYS[2], tokens - estimate, tpm)
  bucket = 1
end
redis.call('HSET', KEYS[4], 'tokens', estimate, 'bucket', bucket, 'quota', counted)
redis.call('PEXPIRE', KEYS[4], ARGV[8])
return {0, 0, 0}
"""
)

# KEYS: tokens bucket, reservation, the reservation month's token counter.
# ARGV: now (ms, -1: Redis's clock), tokens/min, actual tokens.
_SETTLE_TOKENS = (
    _BUCKET_LUA
    + """
local held = redis.call('HMGET', KEYS[2], 'tokens', 'bucket', 'quota')
if not held[1] then return 0 end
redis.call('DEL', KEYS[2])
local reserved, actual, tpm = tonumber(held[1]), tonumber(ARGV[3]), tonumber(ARGV[2])
if held[2] == '1' and tpm > 0 then
  save(KEYS[1], math.min(tpm, level(KEYS[1], tpm) + reserved - actual), tpm)
end
if held[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('INCRBY', KEYS[3], actual - reserved)
end
return 1
"""
)

_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

SLOT_LEASE_MS = 300_000
"""A slot left by a crashed worker frees itself after this long."""


class RedisLimiter:
    """Exact limits across workers and hosts; see the module docstring."""

    def __init__(
        self, url: str, *, prefix: str = "finmaas", clock: Callable[[], float] | None = None
    ) -> None:
        """``clock`` (seconds) times the buckets instead of Redis's clock: for tests."""
        from redis.asyncio import Redis  # imported here: only this backend needs it

        self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self.clock = clock
        self._admit = self.redis.register_script(_ADMIT)
        self._enter = self.redis.register_script(_ENTER)
        self._admit_tokens = self.redis.register_script(_ADMIT_TOKENS)
        self._settle_tokens = self.redis.register_script(_SETTLE_TOKENS)

    async def admit(self, key: KeyRecord, rows: int, month_used: int) -> None:
        if key.rows_per_minute and rows > key.rows_per_minute:
            raise _too_many_rows_at_once(rows, key.rows_per_minute)
        month = datetime.now(UTC).strftime("%Y-%m")
        base = f"{self.prefix}:{key.id}"
        quota = -1 if key.monthly_quota is None else key.monthly_quota
        try:
            verdict, wait_ms, used = await self._admit(
                keys=[f"{base}:requests", f"{base}:rows", f"{base}:quota:{month}"],
                args=[
                    key.requests_per_minute or 0,
                    key.rows_per_minute or 0,
                    rows,
                    quota,
                    month_used,
                    40 * 86400,
                    -1 if self.clock is None else round(self.clock() * 1000),
                ],
            )
        except Exception as exc:  # redis errors: refuse rather than serve unmetered
            raise Unavailable(f"rate limiter unavailable: {type(exc).__name__}") from exc
        if verdict == 1:
            raise _too_many_requests(key.requests_per_minute or 0, wait_ms / 1000)
        if verdict == 2:
            raise _too_many_rows(key.rows_per_minute or 0, wait_ms / 1000)
        if verdict == 3:
            raise quota_exceeded(key, int(used), rows)

    async def admit_tokens(
        self, key: KeyRecord, estimate: int, month_used: int
    ) -> TokenReservation:
        check_token_count("token estimate", estimate)
        if key.tokens_per_minute and estimate > key.tokens_per_minute:
            raise _too_many_tokens_at_once(estimate, key.tokens_per_minute)
        month = datetime.now(UTC).strftime("%Y-%m")
        # The month is part of the id, so settling finds the month's counter it was taken from.
        reservation = TokenReservation(f"{month}.{uuid.uuid4().hex}", key.id, estimate)
        base = f"{self.prefix}:{key.id}"
        quota = key.monthly_token_quota
        try:
            verdict, wait_ms, used = await self._admit_tokens(
                keys=[
                    f"{base}:requests",
                    f"{base}:tokens",
                    f"{base}:token-quota:{month}",
                    f"{base}:held:{reservation.id}",
                ],
                args=[
                    self._now_ms(),
                    key.requests_per_minute or 0,
                    key.tokens_per_minute or 0,
                    estimate,
                    -1 if quota is None else quota,
                    month_used,
                    40 * 86400,
                    RESERVATION_TTL_S * 1000,
                ],
            )
        except Exception as exc:  # redis errors: refuse rather than serve unmetered
            raise Unavailable(f"rate limiter unavailable: {type(exc).__name__}") from exc
        if verdict == 1:
            raise _too_many_requests(key.requests_per_minute or 0, wait_ms / 1000)
        if verdict == 2:
            raise _too_many_tokens(key.tokens_per_minute or 0, wait_ms / 1000)
        if verdict == 3:
            raise token_quota_exceeded(key, int(used), estimate)
        return reservation

    async def settle_tokens(
        self, key: KeyRecord, reservation: TokenReservation, actual: int
    ) -> bool:
        """As :meth:`Limiter.settle_tokens`; if Redis cannot be reached the estimate stays
        charged as reserved (False): the answer has been given, so nothing is raised."""
        check_token_count("actual tokens", actual)
        month = reservation.id.partition(".")[0]
        base = f"{self.prefix}:{key.id}"
        try:
            settled = await self._settle_tokens(
                keys=[
                    f"{base}:tokens",
                    f"{base}:held:{reservation.id}",
                    f"{base}:token-quota:{month}",
                ],
                args=[self._now_ms(), key.tokens_per_minute or 0, actual],
            )
        except Exception:
            return False
        return bool(settled)

    def _now_ms(self) -> int:
        return -1 if self.clock is None else round(self.clock() * 1000)

    async def enter(self, model: str, cap: int) -> str:
        token = uuid.uuid4().hex
        try:
            taken = await self._enter(
                keys=[f"{self.prefix}:inflight:{model}"], args=[cap, token, SLOT_LEASE_MS]
            )
        except Exception as exc:
            raise Unavailable(f"rate limiter unavailable: {type(exc).__name__}") from exc
        if not taken:
            raise at_capacity(model, cap)
        return token

    async def leave(self, model: str, token: str) -> None:
        try:
            await self.redis.zrem(f"{self.prefix}:inflight:{model}", token)
        except Exception:  # the lease expires on its own
            return

    async def close(self) -> None:
        await self.redis.aclose()


def _too_many_requests(limit: int, wait: float) -> RateLimited:
    return RateLimited(
        f"rate limit exceeded: this key may send {limit} requests per minute",
        retry_after=math.ceil(wait),
        limit=limit,
        policy=f"{limit};w=60",
    )


def _too_many_rows(limit: int, wait: float) -> RateLimited:
    return RateLimited(
        f"rate limit exceeded: this key may send {limit} rows per minute",
        retry_after=math.ceil(wait),
        limit=limit,
        policy=f"{limit};w=60",
        reason="rows",
    )


def _too_many_rows_at_once(rows: int, limit: int) -> RateLimited:
    return RateLimited(
        f"request has {rows} rows but this key may send at most {limit} rows per minute; split it",
        retry_after=60,
        limit=limit,
        policy=f"{limit};w=60",
        reason="rows",
    )


def _too_many_tokens(limit: int, wait: float) -> RateLimited:
    return RateLimited(
        f"rate limit exceeded: this key may use {limit} tokens per minute",
        retry_after=math.ceil(wait),
        limit=limit,
        policy=f"{limit};w=60",
        reason="tokens",
    )


def _too_many_tokens_at_once(estimate: int, limit: int) -> RateLimited:
    return RateLimited(
        f"request may use {estimate} tokens (prompt + max_tokens) but this key may use at most "
        f"{limit} tokens per minute; lower max_tokens or shorten the prompt",
        retry_after=60,
        limit=limit,
        policy=f"{limit};w=60",
        reason="tokens",
    )


def _month_reset() -> tuple[datetime, datetime]:
    """Now and the first instant of the next calendar month, UTC."""
    now = datetime.now(UTC)
    reset = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if now.month == 12
        else datetime(now.year, now.month + 1, 1, tzinfo=UTC)
    )
    return now, reset


def quota_exceeded(key: KeyRecord, used: int, rows: int) -> RateLimited:
    now, reset = _month_reset()
    return RateLimited(
        f"monthly quota exceeded: this key may make {key.monthly_quota} predictions per month "
        f"and has made {used} (this request has {rows}); the quota resets at "
        f"{reset.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        retry_after=math.ceil((reset - now).total_seconds()),
        reason="quota",
    )


def token_quota_exceeded(key: KeyRecord, used: int, estimate: int) -> RateLimited:
    now, reset = _month_reset()
    return RateLimited(
        f"monthly token quota exceeded: this key may use {key.monthly_token_quota} tokens per "
        f"month and has used {used} (this request may use {estimate}); the quota resets at "
        f"{reset.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        retry_after=math.ceil((reset - now).total_seconds()),
        reason="token_quota",
    )


def at_capacity(model: str, cap: int) -> RateLimited:
    return RateLimited(
        f"model {model!r} is at its concurrency cap of {cap} requests in flight; retry shortly",
        retry_after=1,
        reason="concurrency",
    )


@dataclass(frozen=True, slots=True)
class _Refusals:
    """How one bucket refuses: an amount beyond the whole limit, and an empty bucket."""

    at_once: Callable[[int, int], RateLimited]
    too_many: Callable[[int, float], RateLimited]


def _one_request_at_once(amount: int, limit: int) -> RateLimited:
    raise AssertionError("one request is never more than a requests-per-minute limit of 1+")


_REQUESTS = _Refusals(_one_request_at_once, _too_many_requests)
_ROWS = _Refusals(_too_many_rows_at_once, _too_many_rows)
_TOKENS = _Refusals(_too_many_tokens_at_once, _too_many_tokens)
