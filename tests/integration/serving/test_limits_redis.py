"""Limits with Redis: exact across two worker processes, against the real Redis server."""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import APPLICANT
from tests.integration.serving.live import start_server, stop_server

REDIS_URL = os.environ.get("FINMAAS_TEST_REDIS_URL")
PREDICT = "/v1/models/credit-risk:predict"
BODY = {"instances": APPLICANT[:1]}

pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="FINMAAS_TEST_REDIS_URL is not set")


def _settings(served_home: Settings, tmp_path: Path) -> Settings:
    copy = tmp_path / "home"
    shutil.copytree(served_home.home, copy)
    return Settings(home=copy)


def _hammer(url: str, token: str, total: int, clients: int) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=10) as http:
            return http.post(PREDICT, json=BODY, headers={"authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(total)))


def test_many_clients_on_two_workers_get_exactly_the_limit(
    served_home: Settings, tmp_path: Path
) -> None:
    assert REDIS_URL is not None
    settings = _settings(served_home, tmp_path)
    registry = Registry.open(settings)
    # One request per minute: the bucket's one token comes back only after 60 s, far
    # longer than a burst of 120 takes even on a busy machine, so exactly one request
    # gets through whichever worker each lands on (a worker of its own would let one
    # through per worker: two).
    token = issue_key(
        KeyStore(registry),
        name=f"burst-{uuid.uuid4().hex[:6]}",
        role="consumer",
        actor="local:setup",
        requests_per_minute=1,
    ).token
    registry.close()
    server = start_server(settings, "--redis-url", REDIS_URL, workers=2, auth=True)
    try:
        responses = _hammer(server.url, token, total=120, clients=16)
    finally:
        stop_server(server)
    statuses = [r.status_code for r in responses]
    assert (statuses.count(200), statuses.count(429)) == (1, 119)
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json() == {
        "error": "rate limit exceeded: this key may send 1 requests per minute"
    }
    assert refused.headers["ratelimit-limit"] == "1"


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_two_workers_share_one_bucket_exactly_on_a_clock_the_test_moves() -> None:
    """The token bucket in Redis, timed by the test: a burst of 120 from two "workers"
    gets exactly 20 through, however long it takes, and the bucket refills one token
    every 3 s, never beyond 20."""
    import asyncio

    from finmaas.errors import RateLimited
    from finmaas.registry.key_store import KeyRecord
    from finmaas.security.limits import RedisLimiter

    assert REDIS_URL is not None
    record = KeyRecord(
        id=uuid.uuid4().hex[:16],
        name="burst",
        owner="",
        tenant="acme",
        role="consumer",
        secret_hash="0" * 64,
        requests_per_minute=20,
    )
    clock = FakeClock()
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def burst(workers: list[RedisLimiter], total: int) -> tuple[int, list[RateLimited]]:
        in_flight = asyncio.Semaphore(8)  # as many as 16 clients on two workers

        async def one(index: int) -> RateLimited | None:
            async with in_flight:
                try:
                    await workers[index % len(workers)].admit(record, 1, 0)
                except RateLimited as refused:
                    return refused
                return None

        outcomes = await asyncio.gather(*(one(i) for i in range(total)))
        refusals = [o for o in outcomes if o is not None]
        return total - len(refusals), refusals

    async def main() -> None:
        workers = [RedisLimiter(REDIS_URL, prefix=prefix, clock=clock) for _ in range(2)]
        try:
            admitted, refusals = await burst(workers, 120)
            assert (admitted, len(refusals)) == (20, 100)
            assert (
                str(refusals[0]) == "rate limit exceeded: this key may send 20 requests per minute"
            )
            assert refusals[0].retry_after == 3
            clock.now += 2.9
            assert (await burst(workers, 5))[0] == 0
            clock.now += 0.1  # 3 s: one token back
            assert (await burst(workers, 5))[0] == 1
            clock.now += 600  # ten minutes: the bucket holds a minute's worth, no more
            assert (await burst(workers, 120))[0] == 20
        finally:
            for worker in workers:
                await worker.close()

    asyncio.run(main())


def test_a_monthly_quota_is_exact_across_workers(served_home: Settings, tmp_path: Path) -> None:
    assert REDIS_URL is not None
    settings = _settings(served_home, tmp_path)
    registry = Registry.open(settings)
    token = issue_key(
        KeyStore(registry),
        name=f"quota-{uuid.uuid4().hex[:6]}",
        role="consumer",
        actor="local:setup",
        monthly_quota=30,
    ).token
    registry.close()
    server = start_server(settings, "--redis-url", REDIS_URL, workers=2, auth=True)
    try:
        responses = _hammer(server.url, token, total=60, clients=12)
    finally:
        stop_server(server)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30
    assert statuses.count(429) == 30
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"].startswith(
        "monthly quota exceeded: this key may make 30 predictions per month and has made 30 "
    )


def test_the_redis_concurrency_cap_is_shared_and_released() -> None:
    import asyncio

    from finmaas.errors import RateLimited
    from finmaas.security.limits import RedisLimiter

    assert REDIS_URL is not None
    model = f"cap-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        first, second = RedisLimiter(REDIS_URL), RedisLimiter(REDIS_URL)  # two "workers"
        try:
            held = [await first.enter(model, 2), await second.enter(model, 2)]
            with pytest.raises(RateLimited) as refused:
                await first.enter(model, 2)
            assert str(refused.value) == (
                f"model {model!r} is at its concurrency cap of 2 requests in flight; retry shortly"
            )
            assert refused.value.retry_after == 1
            await second.leave(model, held[1])
            held[1] = await first.enter(model, 2)
            for token in held:
                await first.leave(model, token)
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())
