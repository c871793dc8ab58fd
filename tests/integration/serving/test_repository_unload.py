"""V2 repository unload means unloaded on every worker of the server until a load,
as in Triton's explicit model control (issue 18, item 7)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from finmaas.config import Settings
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.live import LiveServer, start_server, stop_server

UNLOADED = (
    "model 'credit-risk' is unloaded from this server; "
    "POST /v2/repository/models/credit-risk/load serves it again"
)


@pytest.fixture(scope="module")
def two_workers(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(copy_home(served_home, tmp_path_factory.mktemp("unload")), workers=2)
    try:
        yield server
    finally:
        stop_server(server)


def ready_by_worker(url: str, path: str, timeout: float = 60) -> dict[str, list[int]]:
    """Fresh connections (so both workers answer) until each worker answered 3 times."""
    answers: dict[str, list[int]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}{path}", timeout=60)
        answers.setdefault(response.headers["x-request-id"][:8], []).append(response.status_code)
        if len(answers) == 2 and all(len(codes) >= 3 for codes in answers.values()):
            break
    return answers


def settled(url: str, path: str, status: int, timeout: float = 60) -> dict[str, list[int]]:
    """Wait (within the alias refresh interval, generously) until every worker says
    ``status``; then one more round, which must say it everywhere."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = ready_by_worker(url, path)
        if len(answers) == 2 and all(set(codes) == {status} for codes in answers.values()):
            break
        time.sleep(0.2)
    return ready_by_worker(url, path)


def test_unload_makes_the_model_unready_on_every_worker_until_load(
    two_workers: LiveServer,
) -> None:
    url = two_workers.url
    with httpx.Client(base_url=url, timeout=60) as http:  # a load on a busy machine
        assert http.post("/v2/repository/models/credit-risk/load").status_code == 200
        response = http.post("/v2/repository/models/credit-risk/unload")
        assert (response.status_code, response.json()) == (200, {})

        answers = settled(url, "/v2/models/credit-risk/ready", 503)
        assert len(answers) == 2
        assert all(set(codes) == {503} for codes in answers.values()), answers
        ready = http.get("/v2/models/credit-risk/ready")
        assert (ready.status_code, ready.json()) == (503, {"error": UNLOADED})
        predict = http.post("/v1/models/credit-risk:predict", json={"instances": APPLICANT[:1]})
        assert (predict.status_code, predict.json()) == (503, {"error": UNLOADED})

        assert http.post("/v2/repository/models/credit-risk/load").status_code == 200
        answers = settled(url, "/v2/models/credit-risk/ready", 200)
        assert all(set(codes) == {200} for codes in answers.values()), answers
