"""A real ``finmaas serve`` process on a free port, for the tests where the process is
the point: signals, workers, respawn, TLS, the access log on stdout, cold start."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from finmaas.config import Settings
from tests.processes import descendants, has_exited, stop_process
from tests.waiting import wait_until

READY_WITHIN = 180.0
"""Seconds a server may take to answer ready: each worker imports the model libraries
and loads its models, which takes seconds on an idle machine and minutes on a busy one."""


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    settings: Settings
    log: Path
    """Where the server's stdout and stderr go."""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    settings: Settings,
    *extra: str,
    workers: int = 1,
    auth: bool = False,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
    env: dict[str, str] | None = None,
) -> LiveServer:
    """Serve ``settings`` on a free port; protocol tests run with ``--insecure-no-auth``.

    For HTTPS pass the ``--ssl-*`` flags in ``extra``, ``scheme="https"`` and a
    ``verify`` context that trusts the test CA. ``env``: ``FINMAAS_*`` settings to add.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")} | (env or {})
    command = [
        str(Path(sys.executable).with_name("finmaas")),
        "--home",
        str(settings.home),
        *(["--database-url", settings.database_url] if settings.database_url else []),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *([] if auth else ["--insecure-no-auth"]),
        *extra,
    ]
    log_path = settings.home.parent / f"server-{port}.log"
    with log_path.open("wb") as log:
        # Its own session, so stopping it stops its workers too (its process group).
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveServer(f"{scheme}://127.0.0.1:{port}", process, settings, log_path)
    try:
        ready = wait_until(lambda: _ready(server, verify), READY_WITHIN, interval=0.1)
    except BaseException:
        stop_process(process, timeout=5)
        raise
    if has_exited(process):
        code = stop_process(process)
        output = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"server exited with {code}: {output}")
    if not ready:
        code = stop_process(process, timeout=5)
        output = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(
            f"server did not become ready in {READY_WITHIN:.0f} s (then stopped, {code}): {output}"
        )
    return server


def _ready(server: LiveServer, verify: ssl.SSLContext | bool) -> bool:
    """Whether the server answers ready (or has exited: nothing left to wait for)."""
    if has_exited(server.process):
        return True  # nothing to wait for: start_server sees the exit
    try:
        ready = httpx.get(f"{server.url}/v2/health/ready", timeout=5, verify=verify)
    except httpx.TransportError:
        return False
    return ready.status_code == 200


def stop_server(server: LiveServer, timeout: float = 30) -> int:
    """SIGTERM (a clean stop exits 0), then SIGKILL after ``timeout`` s; the server and
    its workers are always gone, and reaped, when this returns."""
    return stop_process(server.process, timeout)


def worker_pids(server: LiveServer) -> set[int]:
    """The uvicorn workers (spawned children) of a server's supervisor."""
    return {
        pid
        for pid, info in descendants(server.process.pid).items()
        if info.ppid == server.process.pid and "spawn_main" in info.command
    }
