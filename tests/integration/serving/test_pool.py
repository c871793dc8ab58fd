"""ModelPool in process: alias moves, failed loads, eviction, single-flight loading."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from finmaas.config import Settings
from finmaas.errors import NotFound
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.serving.batching import AdaptiveBatcher
from finmaas.serving.pool import ModelPool
from tests.approvals import approve


@pytest.fixture
def home(served_home: Settings, tmp_path: Path) -> Iterator[tuple[Registry, LocalArtifactStore]]:
    copy = tmp_path / "home"
    shutil.copytree(served_home.home, copy)
    settings = Settings(home=copy)
    registry = Registry.open(settings)
    approve(registry, "credit-risk")
    yield registry, LocalArtifactStore(settings.resolved_artifacts_dir)
    registry.close()


def _pool(registry: Registry, store: LocalArtifactStore, **options: object) -> ModelPool:
    return ModelPool(
        registry, store, batcher_factory=AdaptiveBatcher, refresh_interval=60, **options
    )  # type: ignore[arg-type]


def test_a_failed_load_leaves_the_previous_version_serving(
    home: tuple[Registry, LocalArtifactStore],
) -> None:
    registry, store = home
    pool = _pool(registry, store, preload=True)
    broken = registry.get_version("credit-risk", 2)
    store.path_of(broken.artifact_digest).write_bytes(b"tampered")

    async def main() -> None:
        await pool.start()
        assert (await pool.get("credit-risk")).number == 1
        registry.set_alias("credit-risk", "production", 2, actor="test")
        await pool.refresh()
        assert pool.resolve("credit-risk") == 1
        assert (await pool.get("credit-risk")).number == 1
        assert pool.errors[("credit-risk", 2)].startswith(
            f"artifact sha256:{broken.artifact_digest} is corrupted"
        )
        await pool.close()

    asyncio.run(main())


def test_alias_moves_to_a_loadable_version(home: tuple[Registry, LocalArtifactStore]) -> None:
    registry, store = home
    pool = _pool(registry, store, preload=True)

    async def main() -> None:
        await pool.start()
        registry.set_alias("credit-risk", "production", 2, actor="test")
        await pool.refresh()
        assert (await pool.get("credit-risk")).number == 2
        registry.delete_alias("credit-risk", "production", actor="test")
        await pool.refresh()
        with pytest.raises(NotFound) as err:
            await pool.get("credit-risk")
        assert str(err.value) == "model 'credit-risk' has no alias 'production'"
        await pool.close()

    asyncio.run(main())


def test_concurrent_first_requests_load_once_and_lru_evicts_unaliased(
    home: tuple[Registry, LocalArtifactStore],
) -> None:
    registry, store = home
    sizes = {v.version: v.artifact_size for v in registry.list_versions("credit-risk")}
    pool = _pool(registry, store, max_memory=max(sizes.values()) + 1)

    async def main() -> None:
        await pool.start()
        first = await asyncio.gather(*(pool.get("credit-risk", version=2) for _ in range(10)))
        assert len({id(m) for m in first}) == 1
        await pool.get("credit-risk")  # production → 1; version 2 is unaliased and goes
        assert [m.number for m in pool.loaded()] == [1]
        await pool.close()

    asyncio.run(main())


def test_a_cancelled_first_request_does_not_cancel_the_shared_load(
    home: tuple[Registry, LocalArtifactStore],
) -> None:
    registry, store = home
    pool = _pool(registry, store)

    async def main() -> None:
        await pool.start()
        first = asyncio.ensure_future(pool.get("credit-risk", version=2))
        await asyncio.sleep(0)  # the first request started the load
        second = asyncio.ensure_future(pool.get("credit-risk", version=2))
        await asyncio.sleep(0)
        first.cancel()
        loaded = await second
        assert loaded.number == 2
        assert first.cancelled()
        assert [m.number for m in pool.loaded()] == [2]
        await pool.close()

    asyncio.run(main())
