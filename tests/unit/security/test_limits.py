"""Token buckets, quotas and concurrency caps of LocalLimiter, on a fake clock."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, tzinfo

import pytest

from finmaas.errors import RateLimited
from finmaas.registry.key_store import KeyRecord
from finmaas.security import limits
from finmaas.security.limits import LocalLimiter


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def key(
    *,
    requests_per_minute: int | None = None,
    rows_per_minute: int | None = None,
    monthly_quota: int | None = None,
    tokens_per_minute: int | None = None,
    monthly_token_quota: int | None = None,
    key_id: str = "0123456789abcdef",
) -> KeyRecord:
    return KeyRecord(
        id=key_id,
        name="k",
        owner="",
        tenant="acme",
        role="consumer",
        secret_hash="0" * 64,
        requests_per_minute=requests_per_minute,
        rows_per_minute=rows_per_minute,
        monthly_quota=monthly_quota,
        tokens_per_minute=tokens_per_minute,
        monthly_token_quota=monthly_token_quota,
    )


def admit(limiter: LocalLimiter, record: KeyRecord, rows: int = 1, month_used: int = 0) -> None:
    asyncio.run(limiter.admit(record, rows, month_used))


def refused(
    limiter: LocalLimiter, record: KeyRecord, rows: int = 1, month_used: int = 0
) -> RateLimited:
    with pytest.raises(RateLimited) as err:
        admit(limiter, record, rows, month_used)
    return err.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> LocalLimiter:
    return LocalLimiter(clock=clock)


# -- requests per minute -----------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 5, 7, 60, 600])
def test_a_burst_admits_exactly_the_limit(limiter: LocalLimiter, limit: int) -> None:
    record = key(requests_per_minute=limit)
    for _ in range(limit):
        admit(limiter, record)
    error = refused(limiter, record)
    assert str(error) == f"rate limit exceeded: this key may send {limit} requests per minute"
    assert error.retry_after == math.ceil(60 / limit)
    assert error.limit == limit
    assert error.policy == f"{limit};w=60"


def test_retry_after_is_the_time_until_a_token_is_back(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(requests_per_minute=4)  # one token every 15 s
    for _ in range(4):
        admit(limiter, record)
    assert refused(limiter, record).retry_after == 15
    clock.advance(7.5)  # half a token back
    assert refused(limiter, record).retry_after == 8  # 7.5 s, rounded up
    clock.advance(3.75)  # three quarters
    assert refused(limiter, record).retry_after == 4
    clock.advance(3.75)
    admit(limiter, record)
    assert refused(limiter, record).retry_after == 15


def test_tokens_refill_with_time(limiter: LocalLimiter, clock: FakeClock) -> None:
    record = key(requests_per_minute=6)  # one token every 10 s
    for _ in range(6):
        admit(limiter, record)
    refused(limiter, record)
    clock.advance(10)
    admit(limiter, record)
    refused(limiter, record)
    clock.advance(30)
    for _ in range(3):
        admit(limiter, record)
    refused(limiter, record)


def test_a_bucket_holds_at_most_a_minute(limiter: LocalLimiter, clock: FakeClock) -> None:
    record = key(requests_per_minute=4)
    clock.advance(3600)  # a long idle time earns no extra burst
    for _ in range(4):
        admit(limiter, record)
    refused(limiter, record)
    clock.advance(3600)
    for _ in range(4):
        admit(limiter, record)
    refused(limiter, record)


def test_keys_have_their_own_buckets(limiter: LocalLimiter) -> None:
    first = key(requests_per_minute=1, key_id="a" * 16)
    second = key(requests_per_minute=1, key_id="b" * 16)
    admit(limiter, first)
    refused(limiter, first)
    admit(limiter, second)
    refused(limiter, second)


def test_a_key_without_limits_is_never_refused(limiter: LocalLimiter) -> None:
    record = key()
    for _ in range(1000):
        admit(limiter, record, rows=10_000, month_used=10**9)


# -- rows per minute -----------------------------------------------------------------


def test_rows_bucket(limiter: LocalLimiter, clock: FakeClock) -> None:
    record = key(rows_per_minute=100)
    admit(limiter, record, rows=60)
    error = refused(limiter, record, rows=50)
    assert str(error) == "rate limit exceeded: this key may send 100 rows per minute"
    assert error.retry_after == 6  # 10 rows missing at 100 per minute
    assert (error.limit, error.policy) == (100, "100;w=60")
    admit(limiter, record, rows=40)
    assert refused(limiter, record, rows=1).retry_after == 1
    clock.advance(3)  # 5 rows back
    admit(limiter, record, rows=5)
    refused(limiter, record, rows=1)
    clock.advance(60)
    admit(limiter, record, rows=100)


def test_a_request_larger_than_the_rows_limit_is_refused_on_its_own(
    limiter: LocalLimiter,
) -> None:
    record = key(rows_per_minute=100)
    error = refused(limiter, record, rows=101)
    assert str(error) == (
        "request has 101 rows but this key may send at most 100 rows per minute; split it"
    )
    assert error.retry_after == 60
    assert (error.limit, error.policy) == (100, "100;w=60")
    # It took nothing: the full minute is still there.
    admit(limiter, record, rows=100)


def test_a_refused_rows_check_does_not_consume_a_request_token(limiter: LocalLimiter) -> None:
    record = key(requests_per_minute=2, rows_per_minute=10)
    admit(limiter, record, rows=10)  # one request token left, no rows left
    refused(limiter, record, rows=5)
    refused(limiter, record, rows=11)
    refused(limiter, record, rows=5)
    admit(limiter, record, rows=0)  # the last request token is still there
    error = refused(limiter, record, rows=0)
    assert str(error) == "rate limit exceeded: this key may send 2 requests per minute"


def test_a_refused_request_check_does_not_consume_rows(
    limiter: LocalLimiter, clock: FakeClock
) -> None:
    record = key(requests_per_minute=1, rows_per_minute=100)
    admit(limiter, record, rows=50)
    refused(limiter, record, rows=50)  # refused for requests: rows stay at 50
    clock.advance(60)
    admit(limiter, record, rows=100)


# -- this worker's share -------------------------------------------------------------


def test_share_halves_the_burst(clock: FakeClock) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)
    record = key(requests_per_minute=10)
    for _ in range(5):
        admit(limiter, record)
    error = refused(limiter, record)
    assert str(error) == "rate limit exceeded: this key may send 10 requests per minute"
    assert error.retry_after == 12  # 5 per minute on this worker
    assert (error.limit, error.policy) == (10, "10;w=60")
    clock.advance(12)
    admit(limiter, record)
    refused(limiter, record)


def test_share_halves_the_rows_bucket(clock: FakeClock) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)
    record = key(rows_per_minute=100)
    admit(limiter, record, rows=30)
    admit(limiter, record, rows=20)
    error = refused(limiter, record, rows=1)
    assert str(error) == "rate limit exceeded: this key may send 100 rows per minute"
    assert error.retry_after == 2  # 1 row at 50 per minute is 1.2 s


def test_a_share_never_goes_below_one_request(clock: FakeClock) -> None:
    limiter = LocalLimiter(share=0.25, clock=clock)
    record = key(requests_per_minute=2)  # half a request on this worker: one is allowed
    admit(limiter, record)
    assert refused(limiter, record).retry_after == 60


# -- monthly quota -------------------------------------------------------------------


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
        (datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), "2026-02-01T00:00:00Z", 1),
        (datetime(2026, 12, 31, 23, 59, 30, 250000, tzinfo=UTC), "2027-01-01T00:00:00Z", 30),
        (datetime(2026, 12, 1, tzinfo=UTC), "2027-01-01T00:00:00Z", 31 * 86400),
    ],
)
def test_monthly_quota_message(
    monkeypatch: pytest.MonkeyPatch,
    limiter: LocalLimiter,
    now: datetime,
    reset: str,
    retry_after: int,
) -> None:
    freeze(monkeypatch, now)
    record = key(monthly_quota=1000)
    error = refused(limiter, record, rows=10, month_used=995)
    assert str(error) == (
        "monthly quota exceeded: this key may make 1000 predictions per month and has made 995 "
        f"(this request has 10); the quota resets at {reset}"
    )
    assert error.retry_after == retry_after
    assert (error.limit, error.policy) == (0, "")


def test_monthly_quota_resets_on_the_first_of_next_month(limiter: LocalLimiter) -> None:
    """The real clock: the reset is midnight UTC on the first day of the next month."""
    before = datetime.now(UTC)
    error = refused(limiter, key(monthly_quota=5), rows=1, month_used=5)
    after = datetime.now(UTC)
    expected = {
        datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC) for t in (before, after)
    }
    message = str(error)
    assert message.startswith(
        "monthly quota exceeded: this key may make 5 predictions per month and has made 5 "
        "(this request has 1); the quota resets at "
    )
    stamp = message.rsplit(" ", 1)[1]
    assert stamp in {t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in expected}
    reset = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert math.floor((reset - after).total_seconds()) <= error.retry_after
    assert error.retry_after <= math.ceil((reset - before).total_seconds())


def test_monthly_quota_admits_up_to_the_quota(limiter: LocalLimiter) -> None:
    record = key(monthly_quota=1000)
    admit(limiter, record, rows=10, month_used=990)
    admit(limiter, record, rows=0, month_used=1000)
    refused(limiter, record, rows=1, month_used=1000)
    refused(limiter, record, rows=1001, month_used=0)


def test_a_quota_refusal_consumes_no_tokens(limiter: LocalLimiter) -> None:
    record = key(requests_per_minute=1, rows_per_minute=10, monthly_quota=100)
    error = refused(limiter, record, rows=10, month_used=95)
    assert str(error).startswith("monthly quota exceeded")
    admit(limiter, record, rows=10, month_used=0)  # the request and all 10 rows are still there
    assert str(refused(limiter, record, rows=0)) == (
        "rate limit exceeded: this key may send 1 requests per minute"
    )


# -- concurrency caps ----------------------------------------------------------------


def test_enter_and_leave_cap_requests_in_flight(limiter: LocalLimiter) -> None:
    async def scenario() -> None:
        first = await limiter.enter("credit-risk", 2)
        await limiter.enter("credit-risk", 2)
        with pytest.raises(RateLimited) as err:
            await limiter.enter("credit-risk", 2)
        assert str(err.value) == (
            "model 'credit-risk' is at its concurrency cap of 2 requests in flight; retry shortly"
        )
        assert (err.value.retry_after, err.value.limit, err.value.policy) == (1, 0, "")
        await limiter.enter("fraud", 1)  # other models have their own slots
        await limiter.leave("credit-risk", first)
        await limiter.enter("credit-risk", 2)
        with pytest.raises(RateLimited):
            await limiter.enter("credit-risk", 2)

    asyncio.run(scenario())


def test_share_splits_the_concurrency_cap(clock: FakeClock) -> None:
    async def scenario() -> None:
        limiter = LocalLimiter(share=0.5, clock=clock)
        await limiter.enter("m", 4)
        await limiter.enter("m", 4)
        with pytest.raises(RateLimited) as err:
            await limiter.enter("m", 4)
        assert str(err.value) == (
            "model 'm' is at its concurrency cap of 4 requests in flight; retry shortly"
        )
        small = LocalLimiter(share=0.25, clock=clock)
        await small.enter("m", 1)  # a share never goes below one slot
        with pytest.raises(RateLimited):
            await small.enter("m", 1)

    asyncio.run(scenario())


def test_close_is_a_no_op(limiter: LocalLimiter) -> None:
    assert asyncio.run(limiter.close()) is None


def test_a_request_larger_than_the_share_passes_on_a_full_bucket_and_leaves_debt(
    clock: FakeClock,
) -> None:
    limiter = LocalLimiter(share=0.5, clock=clock)  # 50 of 100 rows per minute here
    record = key(rows_per_minute=100)
    admit(limiter, record, rows=60)  # within the key's limit, beyond this worker's share
    assert str(refused(limiter, record, rows=1)) == (
        "rate limit exceeded: this key may send 100 rows per minute"
    )
    clock.advance(12)  # 10 rows of debt repaid, nothing saved yet
    assert str(refused(limiter, record, rows=1)).startswith("rate limit exceeded")
    clock.advance(1.3)
    admit(limiter, record, rows=1)
