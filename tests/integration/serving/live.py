"""A real ``finmaas serve`` process on a free port, for the tests where the process is
the point: signals, workers, respawn, TLS, the access log on stdout, cold start."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from finmaas.config import Settings


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    settings: Settings

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
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {process.returncode}: {output}")
        try:
            ready = httpx.get(f"{url}/v2/health/ready", timeout=1, verify=verify)
            if ready.status_code == 200:
                return LiveServer(url, process, settings)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not become ready in 30 s")


def stop_server(server: LiveServer, timeout: float = 20) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


def worker_pids(supervisor: int) -> set[int]:
    """The uvicorn workers (spawned children) of the ``finmaas serve`` process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in command:
            found.add(int(entry.name))
    return found
