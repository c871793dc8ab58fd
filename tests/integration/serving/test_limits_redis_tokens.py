"""Token limits with Redis: two RedisLimiters ("workers") share one bucket, one quota
counter and every reservation exactly, on a clock the test moves (and once on Redis's own)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from finmaas.errors import RateLimited
from finmaas.registry.key_store import KeyRecord
from finmaas.security.limits import RedisLimiter, TokenReservation

REDIS_URL = os.environ.get("FINMAAS_TEST_REDIS_URL")

pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="FINMAAS_TEST_REDIS_URL is not set")


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def record(
    *,
    tokens_per_minute: int | None = None,
    monthly_token_quota: int | None = None,
    requests_per_minute: int | None = None,
) -> KeyRecord:
    return KeyRecord(
        id=uuid.uuid4().hex[:16],
        name="gen",
        owner="",
        tenant="acme",
        role="consumer",
        secret_hash="0" * 64,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        monthly_token_quota=monthly_token_quota,
    )


Scenario = Callable[[RedisLimiter, RedisLimiter, FakeClock], Awaitable[None]]


def run(scenario: Scenario, *, clocked: bool = True) -> None:
    """Run ``scenario`` with two limiters under a prefix of its own."""
    assert REDIS_URL is not None
    clock = FakeClock()
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        workers = [
            RedisLimiter(REDIS_URL, prefix=prefix, clock=clock if clocked else None)
            for _ in range(2)
        ]
        try:
            await scenario(workers[0], workers[1], clock)
        finally:
            for worker in workers:
                await worker.close()

    asyncio.run(main())


async def refusal(
    worker: RedisLimiter, key: KeyRecord, estimate: int, used: int = 0
) -> RateLimited:
    with pytest.raises(RateLimited) as err:
        await worker.admit_tokens(key, estimate, used)
    return err.value


def test_two_workers_share_one_token_bucket_exactly() -> None:
    key = record(tokens_per_minute=600)  # 10 tokens a second

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        in_flight = asyncio.Semaphore(8)

        async def one(index: int) -> RateLimited | None:
            async with in_flight:
                try:
                    await (a, b)[index % 2].admit_tokens(key, 10, 0)
                except RateLimited as refused:
                    return refused
                return None

        outcomes = await asyncio.gather(*(one(i) for i in range(120)))
        refusals = [o for o in outcomes if o is not None]
        assert (120 - len(refusals), len(refusals)) == (60, 60)
        assert str(refusals[0]) == "rate limit exceeded: this key may use 600 tokens per minute"
        assert (refusals[0].retry_after, refusals[0].limit, refusals[0].reason) == (
            1,
            600,
            "tokens",
        )
        clock.now += 0.9
        assert (await refusal(a, key, 10)).retry_after == 1
        clock.now += 0.1  # 10 tokens back
        await b.admit_tokens(key, 10, 0)
        await refusal(a, key, 1)

    run(scenario)


def test_settle_on_another_worker_returns_and_charges_exactly() -> None:
    key = record(tokens_per_minute=600)

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        held = await a.admit_tokens(key, 500, 0)  # 100 left
        assert await b.settle_tokens(key, held, 200) is True  # 300 back: 400
        await b.admit_tokens(key, 400, 0)
        await refusal(a, key, 1)
        clock.now += 60  # full
        held = await a.admit_tokens(key, 600, 0)  # empty
        assert await b.settle_tokens(key, held, 900) is True  # 300 over: -300
        error = await refusal(a, key, 100)  # 400 missing at 10 a second
        assert (str(error), error.retry_after) == (
            "rate limit exceeded: this key may use 600 tokens per minute",
            40,
        )
        clock.now += 39.5
        assert (await refusal(b, key, 100)).retry_after == 1
        clock.now += 0.5
        await b.admit_tokens(key, 100, 0)
        await refusal(a, key, 1)

    run(scenario)


def test_settle_is_idempotent_and_cannot_be_forged_across_workers() -> None:
    key = record(tokens_per_minute=1000)
    other = record(tokens_per_minute=1000)

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        held = await a.admit_tokens(key, 100, 0)
        await a.admit_tokens(key, 900, 0)  # empty
        made_up = TokenReservation(f"{held.id.partition('.')[0]}.{'0' * 32}", key.id, 10**6)
        assert await b.settle_tokens(key, made_up, 0) is False
        assert await b.settle_tokens(other, held, 0) is False
        both = await asyncio.gather(
            a.settle_tokens(key, replace(held, tokens=10**6), 0),
            b.settle_tokens(key, held, 0),
        )
        assert sorted(both) == [False, True]  # exactly one settles, and only the 100 reserved
        await a.admit_tokens(key, 100, 0)
        await refusal(b, key, 1)

    run(scenario)


def test_the_monthly_token_quota_is_exact_across_workers_and_follows_settlements() -> None:
    key = record(monthly_token_quota=1000)

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        first = await a.admit_tokens(key, 400, 0)
        await b.admit_tokens(key, 400, 0)  # the counter, not the caller's total, now says 800
        error = await refusal(a, key, 300, 0)
        assert str(error).startswith(
            "monthly token quota exceeded: this key may use 1000 tokens per month and has used "
            "800 (this request may use 300); the quota resets at "
        )
        assert error.reason == "token_quota"
        assert await b.settle_tokens(key, first, 100) is True  # 300 back: 500
        third = await a.admit_tokens(key, 300, 0)  # 800
        assert await a.settle_tokens(key, third, 500) is True  # 200 over: 1000
        error = await refusal(b, key, 1, 0)
        assert "has used 1000 (this request may use 1)" in str(error)
        await a.admit_tokens(key, 0, 0)

    run(scenario)


def test_a_generative_request_takes_a_request_token_shared_with_predictions() -> None:
    key = record(requests_per_minute=2, tokens_per_minute=100)

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        await a.admit_tokens(key, 100, 0)
        await refusal(b, key, 1)  # for tokens: took no request
        await b.admit(key, 0, 0)  # the second request, by the predictions path
        error = await refusal(a, key, 0)
        assert (str(error), error.retry_after) == (
            "rate limit exceeded: this key may send 2 requests per minute",
            30,
        )

    run(scenario)


def test_redis_own_clock_reserves_and_settles() -> None:
    key = record(tokens_per_minute=6000, monthly_token_quota=10_000)

    async def scenario(a: RedisLimiter, b: RedisLimiter, clock: FakeClock) -> None:
        held = await a.admit_tokens(key, 6000, 0)
        error = await refusal(b, key, 3000)
        assert str(error) == "rate limit exceeded: this key may use 6000 tokens per minute"
        assert 1 <= error.retry_after <= 30  # 3000 tokens at 100 a second, less what refilled
        assert await b.settle_tokens(key, held, 0) is True
        assert await a.settle_tokens(key, held, 0) is False
        await b.admit_tokens(key, 6000, 0)  # the whole minute was returned

    run(scenario, clocked=False)
