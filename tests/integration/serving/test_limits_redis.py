"""Limits with Redis: exact across two worker processes, against the real Redis server."""

from __future__ import annotations

import os
import shutil
import time
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
    # 20 per minute refills one token every 3 s: a burst of 120 requests gets the 20 of
    # the full bucket through, whichever worker each lands on, plus one for every 3 s the
    # burst lasted (a loaded machine may stretch it past 3 s).
    token = issue_key(
        KeyStore(registry),
        name=f"burst-{uuid.uuid4().hex[:6]}",
        role="consumer",
        actor="local:setup",
        requests_per_minute=20,
    ).token
    registry.close()
    server = start_server(settings, "--redis-url", REDIS_URL, workers=2, auth=True)
    try:
        started = time.monotonic()
        responses = _hammer(server.url, token, total=120, clients=16)
        refilled = int((time.monotonic() - started) / 3)
    finally:
        stop_server(server)
    statuses = [r.status_code for r in responses]
    assert 20 <= statuses.count(200) <= 20 + refilled
    assert statuses.count(200) + statuses.count(429) == 120
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json() == {
        "error": "rate limit exceeded: this key may send 20 requests per minute"
    }
    assert refused.headers["ratelimit-limit"] == "20"


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
