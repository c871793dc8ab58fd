"""Token limits for generative models on LocalLimiter, on a clock the test moves: the
tokens-per-minute bucket (admit on an estimate, settle on the engine's count), the
monthly token quota, this worker's share, and every bad input."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, tzinfo

import pytest

from finmaas.errors import Invalid, RateLimited
from finmaas.registry.key_store import KeyRecord
from finmaas.security import limits
from finmaas.security.limits import (
    RESERVATION_TTL_S,
    LocalLimiter,
    RedisLimiter,
    TokenReservation,
)
from tests.unit.security.test_limits import FakeClock, key


def reserve(
    limiter: LocalLimiter, record: KeyRecord, estimate: int, month_used: int = 0
) -> TokenReservation:
    return asyncio.run(limiter.admit_tokens(record, estimate, month_used))


def refused(
    limiter: LocalLimiter, record: KeyRecord, estimate: int, month_used: int = 0
) -> RateLimited:
    with pytest.raises(RateLimited) as err:
        reserve(limiter, record, estimate, month_used)
    return err.value


def settle(
    limiter: LocalLimiter, record: KeyRecord, reservation: TokenReservation, actual: int
) -> bool:
    return asyncio.run(limiter.settle_tokens(record, reservation, actual))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> LocalLimiter:
    return LocalLimiter(clock=clock)


# -- admitting on an estimate ------------------------------------------------------------


def test_an_estimate_is_admitted_while_the_bucket_covers_it(limiter: LocalLimiter) -> None:
    record = key(tokens_per_minute=1000)
    first = reserve(limiter, record, 600)
    assert (first.key_id, first.tokens) == (record.id, 600)
    error = refused(limiter, record, 500)  # 400 left
    assert str(error) == "rate limit exceeded: this key may use 1000 tokens per minute"
    assert error.retry_after == 6  # 100 tokens missing at 1000 per minute
    assert (error.limit, error.policy, error.reason) == (1000, "1000;w=60", "tokens")
    reserve(limiter, record, 400)  # the refusal took nothing
    assert refused(limiter, record, 1).retry_after == 1


def test_the_bucket_refills_continuously_and_holds_at_most_a_minute(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(tokens_per_minute=600)  # 10 tokens a second
    reserve(limiter, record, 600)
    assert refused(limiter, record, 50).retry_after == 5
    clock.advance(4.9)
    assert refused(limiter, record, 50).retry_after == 1  # 1 token missing: 0.1 s
    clock.advance(0.1)
    reserve(limiter, record, 50)
    clock.advance(3600)  # an idle hour earns one minute's worth, no more
    reserve(limiter, record, 600)
    refused(limiter, record, 1)


def test_an_estimate_above_the_limit_is_refused_on_its_own(limiter: LocalLimiter) -> None:
    record = key(tokens_per_minute=1000)
    error = refused(limiter, record, 1001)
    assert str(error) == (
        "request may use 1001 tokens (prompt + max_tokens) but this key may use at most "
        "1000 tokens per minute; lower max_tokens or shorten the prompt"
    )
    assert (error.retry_after, error.limit, error.policy, error.reason) == (
        60,
        1000,
        "1000;w=60",
        "tokens",
    )
    reserve(limiter, record, 1000)  # it took nothing


def test_a_generative_request_counts_against_requests_per_minute(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(requests_per_minute=2, tokens_per_minute=1000)
    reserve(limiter, record, 10)
    asyncio.run(limiter.admit(record, 0, 0))  # the same bucket as predictions
    error = refused(limiter, record, 10)
    assert str(error) == "rate limit exceeded: this key may send 2 requests per minute"
    assert (error.retry_after, error.reason) == (30, "requests")
    clock.advance(30)
    reserve(limiter, record, 980)  # the refusal took no tokens: 990 were left, 980 asked


def test_a_refused_token_check_takes_no_request(limiter: LocalLimiter) -> None:
    record = key(requests_per_minute=2, tokens_per_minute=100)
    reserve(limiter, record, 100)
    refused(limiter, record, 1)  # for tokens
    refused(limiter, record, 1)
    settle(limiter, record, reserve(limiter, record, 0), 0)  # the second request is still there
    assert str(refused(limiter, record, 0)) == (
        "rate limit exceeded: this key may send 2 requests per minute"
    )


# -- settling on the engine's count ----------------------------------------------------


def test_settle_returns_the_unused_part_of_the_estimate(limiter: LocalLimiter) -> None:
    record = key(tokens_per_minute=1000)
    held = reserve(limiter, record, 800)  # 200 left
    assert settle(limiter, record, held, 300) is True  # 500 back: 700
    reserve(limiter, record, 700)
    assert refused(limiter, record, 1).retry_after == 1


def test_settle_never_fills_the_bucket_beyond_a_minute(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(tokens_per_minute=600)
    held = reserve(limiter, record, 600)
    clock.advance(60)  # full again
    assert settle(limiter, record, held, 0) is True  # 600 back, capped at 600
    reserve(limiter, record, 600)
    refused(limiter, record, 1)


def test_an_overrun_is_charged_and_the_next_request_waits_exactly_for_it(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(tokens_per_minute=600)  # 10 tokens a second
    held = reserve(limiter, record, 600)  # empty
    assert settle(limiter, record, held, 900) is True  # 300 more than reserved: -300
    error = refused(limiter, record, 100)  # 400 missing at 10 a second
    assert str(error) == "rate limit exceeded: this key may use 600 tokens per minute"
    assert error.retry_after == 40
    clock.advance(39.9)
    assert refused(limiter, record, 100).retry_after == 1
    clock.advance(0.1)
    reserve(limiter, record, 100)
    refused(limiter, record, 1)


def test_an_overrun_beyond_a_minute_makes_the_key_wait_longer_than_a_minute(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(tokens_per_minute=600)
    held = reserve(limiter, record, 100)  # 500 left
    settle(limiter, record, held, 1700)  # 1600 over: -1100
    assert refused(limiter, record, 1).retry_after == 111  # 1101 tokens at 10 a second
    clock.advance(110)  # back to 0
    refused(limiter, record, 1)
    clock.advance(0.5)
    reserve(limiter, record, 5)
    refused(limiter, record, 1)


def test_settling_twice_changes_nothing(limiter: LocalLimiter) -> None:
    record = key(tokens_per_minute=1000)
    held = reserve(limiter, record, 800)
    assert settle(limiter, record, held, 300) is True
    assert settle(limiter, record, held, 0) is False
    assert settle(limiter, record, held, 5000) is False
    reserve(limiter, record, 700)
    refused(limiter, record, 1)


def test_a_forged_reservation_credits_nothing(limiter: LocalLimiter) -> None:
    record = key(tokens_per_minute=1000)
    other = key(tokens_per_minute=1000, key_id="f" * 16)
    held = reserve(limiter, record, 100)  # 900 left
    reserve(limiter, record, 900)  # empty
    made_up = TokenReservation("0" * 32, record.id, 10**6)
    assert settle(limiter, record, made_up, 0) is False
    assert settle(limiter, other, held, 0) is False  # another key's reservation
    # A copy claiming a larger estimate settles only what was reserved: 100 back, not 10**6.
    assert settle(limiter, record, replace(held, tokens=10**6), 0) is True
    reserve(limiter, record, 100)
    refused(limiter, record, 1)


def test_a_reservation_lapses_after_its_time_and_its_estimate_stays_charged(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(tokens_per_minute=600)
    held = reserve(limiter, record, 600)
    kept = reserve(limiter, key(key_id="e" * 16), 5)
    clock.advance(RESERVATION_TTL_S)
    assert settle(limiter, record, held, 0) is False
    assert settle(limiter, key(key_id="e" * 16), kept, 0) is False
    assert limiter._held == {}  # forgotten: a crashed caller leaks nothing


def test_a_key_without_token_limits_is_never_refused(limiter: LocalLimiter) -> None:
    record = key()
    for _ in range(100):
        held = reserve(limiter, record, 10**9, month_used=10**12)
        assert settle(limiter, record, held, 10**9) is True


# -- this worker's share ---------------------------------------------------------------


def test_share_halves_the_token_bucket(clock: FakeClock) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)  # 500 of 1000 tokens a minute here
    record = key(tokens_per_minute=1000)
    reserve(limiter, record, 300)
    reserve(limiter, record, 200)
    error = refused(limiter, record, 100)
    assert str(error) == "rate limit exceeded: this key may use 1000 tokens per minute"
    assert error.retry_after == 12  # 100 tokens at 500 a minute
    assert (error.limit, error.policy) == (1000, "1000;w=60")
    clock.advance(12)
    reserve(limiter, record, 100)


def test_settle_with_a_share_returns_to_this_workers_bucket(clock: FakeClock) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)
    record = key(tokens_per_minute=1000)
    held = reserve(limiter, record, 500)
    assert settle(limiter, record, held, 200) is True  # 300 back
    reserve(limiter, record, 300)
    refused(limiter, record, 1)
    again = reserve(limiter, record, 0)
    assert settle(limiter, record, again, 100) is True  # an overrun of 100 at 500 a minute
    assert refused(limiter, record, 50).retry_after == 18  # 150 tokens missing


def test_an_estimate_beyond_the_share_passes_on_a_full_bucket_and_leaves_debt(
    clock: FakeClock,
) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)  # 500 of 1000 here
    record = key(tokens_per_minute=1000)
    reserve(limiter, record, 700)  # within the key's limit: -200 on this worker
    assert refused(limiter, record, 100).retry_after == 36  # 300 tokens at 500 a minute
    clock.advance(36)
    reserve(limiter, record, 100)


# -- monthly token quota ---------------------------------------------------------------


def freeze(monkeypatch: pytest.MonkeyPatch, frozen_at: datetime) -> None:
    """Make ``datetime.now`` in the limits module return ``frozen_at``."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Frozen:
            return cls.fromtimestamp(frozen_at.timestamp(), tz)

    monkeypatch.setattr(limits, "datetime", Frozen)


@pytest.mark.parametrize(
    ("now", "reset", "retry_after"),
    [
        (datetime(2026, 2, 10, 12, tzinfo=UTC), "2026-03-01T00:00:00Z", 18 * 86400 + 43200),
        (datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC), "2026-05-01T00:00:00Z", 1),
        (datetime(2026, 12, 31, 23, 59, 30, 250000, tzinfo=UTC), "2027-01-01T00:00:00Z", 30),
    ],
)
def test_the_monthly_token_quota_message_names_the_quota_and_its_reset(
    monkeypatch: pytest.MonkeyPatch,
    limiter: LocalLimiter,
    now: datetime,
    reset: str,
    retry_after: int,
) -> None:
    freeze(monkeypatch, now)
    error = refused(limiter, key(monthly_token_quota=100_000), 600, month_used=99_500)
    assert str(error) == (
        "monthly token quota exceeded: this key may use 100000 tokens per month and has used "
        f"99500 (this request may use 600); the quota resets at {reset}"
    )
    assert (error.retry_after, error.limit, error.policy, error.reason) == (
        retry_after,
        0,
        "",
        "token_quota",
    )


def test_the_monthly_token_quota_admits_up_to_the_quota(limiter: LocalLimiter) -> None:
    record = key(monthly_token_quota=1000)
    reserve(limiter, record, 10, month_used=990)
    reserve(limiter, record, 0, month_used=1000)
    refused(limiter, record, 1, month_used=1000)
    refused(limiter, record, 1001, month_used=0)


def test_a_quota_refusal_takes_no_request_and_no_tokens(limiter: LocalLimiter) -> None:
    record = key(requests_per_minute=1, tokens_per_minute=100, monthly_token_quota=1000)
    assert str(refused(limiter, record, 100, month_used=950)).startswith(
        "monthly token quota exceeded"
    )
    reserve(limiter, record, 100, month_used=0)  # the request and all 100 tokens were there
    assert str(refused(limiter, record, 0)) == (
        "rate limit exceeded: this key may send 1 requests per minute"
    )


# -- bad input: the same message from both backends -------------------------------------


BAD_COUNTS = [
    (-1, "-1"),
    (10**9 + 1, "1000000001"),
    (1.5, "1.5"),
    (True, "True"),
    ("10", "'10'"),
    (None, "None"),
]


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest, clock: FakeClock) -> LocalLimiter | RedisLimiter:
    """Both backends; the Redis one never connects: bad input is refused before any call."""
    if request.param == "local":
        return LocalLimiter(clock=clock)
    return RedisLimiter("redis://127.0.0.1:1/0", prefix="never-used", clock=clock)


@pytest.mark.parametrize(("value", "shown"), BAD_COUNTS)
def test_a_bad_estimate_is_refused_with_its_message(
    backend: LocalLimiter | RedisLimiter, value: object, shown: str
) -> None:
    with pytest.raises(Invalid) as err:
        asyncio.run(backend.admit_tokens(key(tokens_per_minute=10), value, 0))  # type: ignore[arg-type]
    assert (
        str(err.value) == f"token estimate must be a whole number from 0 to 1000000000, got {shown}"
    )


@pytest.mark.parametrize(("value", "shown"), BAD_COUNTS)
def test_a_bad_actual_count_is_refused_with_its_message(
    backend: LocalLimiter | RedisLimiter, value: object, shown: str
) -> None:
    held = TokenReservation("2026-01.00", "0123456789abcdef", 1)
    with pytest.raises(Invalid) as err:
        asyncio.run(backend.settle_tokens(key(), held, value))  # type: ignore[arg-type]
    assert (
        str(err.value) == f"actual tokens must be a whole number from 0 to 1000000000, got {shown}"
    )


def test_both_backends_refuse_an_estimate_above_the_limit_alike(
    backend: LocalLimiter | RedisLimiter,
) -> None:
    with pytest.raises(RateLimited) as err:
        asyncio.run(backend.admit_tokens(key(tokens_per_minute=4096), 5000, 0))
    assert str(err.value) == (
        "request may use 5000 tokens (prompt + max_tokens) but this key may use at most "
        "4096 tokens per minute; lower max_tokens or shorten the prompt"
    )
    assert err.value.retry_after == 60
