"""Concurrent writers in separate processes: distinct versions, no lost update."""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter

from finmaas.config import Settings
from finmaas.errors import Conflict
from finmaas.registry import Registry
from tests.approvals import approve
from tests.integration.registry.helpers import new_version

PROCESSES = 4
PUSHES = 8


def _publish_many(
    url: str, home: str, worker: int, start: multiprocessing.synchronize.Event
) -> list[int]:
    registry = Registry.open(Settings(home=home, database_url=url, db_busy_timeout=30))
    try:
        start.wait(timeout=30)
        return [
            registry.publish_version(
                "shared", new_version(f"{worker}-{i}"), actor=f"w{worker}"
            ).version
            for i in range(PUSHES)
        ]
    finally:
        registry.close()


def _promote_many(
    url: str, home: str, worker: int, start: multiprocessing.synchronize.Event
) -> int:
    registry = Registry.open(Settings(home=home, database_url=url, db_busy_timeout=30))
    moved = 0
    try:
        start.wait(timeout=30)
        for i in range(PUSHES):
            version = 1 + (worker + i) % 3
            try:
                registry.set_alias("shared", "production", version, actor=f"w{worker}")
                moved += 1
            except Conflict as exc:  # the same target twice in a row is refused, by design
                if "already points to" not in str(exc):
                    raise
        return moved
    finally:
        registry.close()


def test_concurrent_publishers_get_distinct_versions(
    settings: Settings, registry: Registry
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(PROCESSES) as pool:
        pending = [
            pool.apply_async(
                _publish_many, (settings.resolved_database_url, str(settings.home), w, start)
            )
            for w in range(PROCESSES)
        ]
        start.set()
        results = [p.get(timeout=120) for p in pending]

    numbers = [n for result in results for n in result]
    assert sorted(numbers) == list(range(1, PROCESSES * PUSHES + 1))
    for result in results:
        assert result == sorted(result)
    assert registry.get_model("shared").latest_version == PROCESSES * PUSHES
    versions = registry.list_versions("shared")
    assert Counter(v.created_by for v in versions) == {f"w{w}": PUSHES for w in range(PROCESSES)}


def test_concurrent_alias_moves_lose_no_event(settings: Settings, registry: Registry) -> None:
    for seed in "abc":
        registry.publish_version("shared", new_version(seed), actor="setup")
    approve(registry, "shared")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(PROCESSES) as pool:
        pending = [
            pool.apply_async(
                _promote_many, (settings.resolved_database_url, str(settings.home), w, start)
            )
            for w in range(PROCESSES)
        ]
        start.set()
        moved = sum(p.get(timeout=120) for p in pending)

    history = registry.alias_history("shared", "production")
    assert len(history) == moved
    # Each event starts where the one before it ended: no move was lost or interleaved.
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
    assert registry.get_version("shared", "production").version == history[-1].to_version
