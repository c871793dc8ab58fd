"""A ``finmaas serve`` process and its workers end together, and say so (issue 21, item 5).

A worker of a killed supervisor used to keep serving the port, so a new server could
not bind it; each worker now waits on its supervisor's sentinel pipe and stops when it
closes (:func:`finmaas.background.stop_with_parent`).
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from finmaas.config import Settings
from tests.integration.serving.live import start_server, stop_server, worker_pids
from tests.waiting import wait_until

STOPPED_WITHIN = 60
"""Generous: a worker drains (up to shutdown_timeout) on a shared, busy machine."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc"),
]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/v2/health/live", timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_the_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    server = start_server(Settings(home=tmp_path / "home"), workers=2)
    supervisor = server.process.pid
    workers: set[int] = set()
    try:
        assert wait_until(lambda: len(worker_pids(server)) == 2, STOPPED_WITHIN), "two workers"
        workers = worker_pids(server)

        os.kill(supervisor, signal.SIGKILL)
        server.process.wait(timeout=STOPPED_WITHIN)
        wait_until(
            lambda: not answers(server.url) and not any(running(pid) for pid in workers),
            STOPPED_WITHIN,
            interval=0.1,
        )

        assert not answers(server.url)
        assert [pid for pid in workers if running(pid)] == []
        port = urlsplit(server.url).port
        with socket.socket() as sock:  # what a new `finmaas serve` does first
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port or 0))
    finally:
        stop_server(server)
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_stopped_server_says_so(tmp_path: Path) -> None:
    server = start_server(Settings(home=tmp_path / "home"))
    try:
        with server.client() as client:
            assert client.get("/v2/health/live").status_code == 200
    finally:
        code = stop_server(server)
    port = urlsplit(server.url).port
    output = server.log.read_text().splitlines()
    assert code == 0
    assert output[-1] == f"finmaas stopped serving http://127.0.0.1:{port}"
