"""Hot alias switching and graceful shutdown, on a real server process."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from finmaas.config import Settings
from finmaas.registry import Registry
from tests.approvals import approve
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.live import start_server, stop_server
from tests.waiting import GENEROUS, wait_until

PREDICT = "/v1/models/credit-risk:predict"


@pytest.fixture
def own_home(served_home: Settings, tmp_path: Path) -> Settings:
    """A private copy of the served home, so moving aliases does not disturb other tests."""
    return copy_home(served_home, tmp_path)


def test_alias_flips_under_load_fail_no_request(own_home: Settings) -> None:
    server = start_server(own_home)
    registry = Registry.open(own_home)
    stop = threading.Event()
    seen: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                response = http.post(PREDICT, json={"instances": APPLICANT[:2]})
                version = (
                    response.json().get("model_version", "?")
                    if response.status_code == 200
                    else response.text
                )
                with lock:
                    seen[(response.status_code, version)] += 1

    try:
        approve(registry, "credit-risk")
        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer) for _ in range(4)]
            try:
                # At least 20 flips, and on until both versions have answered: on a busy
                # machine the first load of each takes longer than a few flips (bounded).
                for flip in range(200):
                    with lock:
                        answered = {version for _, version in seen}
                    if flip >= 20 and answered >= {"1", "2"}:
                        break
                    registry.set_alias(
                        "credit-risk", "production", 2 if flip % 2 == 0 else 1, actor="test"
                    )
                    time.sleep(0.15)  # the pace of the flips
                final = registry.get_version("credit-risk", "production").version
                # The refresh runs every 0.5 s; a busy machine may take longer.
                assert wait_until(lambda: _served_version(server.url) == str(final))
            finally:
                stop.set()
            for worker in workers:
                worker.result()
    finally:
        stop.set()
        registry.close()
        stop_server(server)

    statuses = {status for status, _ in seen}
    assert statuses == {200}, seen
    assert {version for _, version in seen} == {"1", "2"}
    assert sum(seen.values()) > 100


def _served_version(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as http:
        return str(http.post(PREDICT, json={"instances": APPLICANT[:1]}).json()["model_version"])


def _queued_rows(url: str) -> float:
    """Rows waiting for the model now, from the server's metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("finmaas_queue_rows{")
    )


def test_sigterm_finishes_in_flight_requests(own_home: Settings) -> None:
    server = start_server(own_home)
    body = orjson.dumps({"instances": APPLICANT * 250})  # 2,000 rows: 8 of them fit the queue
    ready = threading.Barrier(9)
    results: list[int | str] = []

    def call() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            http.get("/v2/health/live")  # connected before the stop signal
            ready.wait(timeout=60)
            try:
                response = http.post(
                    PREDICT, content=body, headers={"content-type": "application/json"}
                )
                results.append(response.status_code)
            except httpx.TransportError as exc:  # not yet read by the server when it closed
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=call) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        ready.wait(timeout=60)
        # Stop while requests are in flight: once one is queued for the model (or, on a
        # fast machine, already answered).
        assert wait_until(lambda: results or _queued_rows(server.url) > 0, interval=0.01)
    finally:
        code = stop_server(server)
        for thread in threads:
            thread.join()
    assert code == 0
    assert len(results) == len(threads)
    assert results.count(200) >= 1, results
    assert not [r for r in results if isinstance(r, int) and r != 200], results
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v2/health/live", timeout=1)


def test_every_worker_soon_serves_a_moved_alias(database_url: str, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL, with two workers, a promotion from another process."""
    from finmaas.actor import Actor
    from finmaas.quickstart import run_quickstart
    from finmaas.registry import LocalArtifactStore

    settings = Settings(home=tmp_path / "home", database_url=database_url)
    registry = Registry.open(settings)
    run_quickstart(
        registry,
        LocalArtifactStore(settings.resolved_artifacts_dir),
        actor=Actor("t"),
        folds=2,
    )
    approve(registry, "credit-risk")
    server = start_server(settings, workers=2)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            # Load both versions in both workers first: this test times how fast a move
            # propagates, not how long a first load of a runtime takes.
            for _ in range(20):
                for version in ("1", "2"):
                    http.post(
                        PREDICT, params={"version": version}, json={"instances": APPLICANT[:1]}
                    )
            for target in (2, 1, 2):
                registry.set_alias("credit-risk", "production", target, actor="test")
                deadline = time.monotonic() + GENEROUS
                streak = 0
                while streak < 20:  # 20 answers in a row, spread over both workers
                    version = http.post(PREDICT, json={"instances": APPLICANT[:1]}).json()[
                        "model_version"
                    ]
                    streak = streak + 1 if version == str(target) else 0
                    # The refresh runs every 0.5 s; the bound is for a loaded machine.
                    assert time.monotonic() < deadline, f"still serving {version}"
    finally:
        registry.close()
        stop_server(server)
