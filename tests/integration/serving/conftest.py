"""A real ``finmaas serve`` on an ephemeral port, over a home with the quickstart models."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.quickstart import run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.records import ModelUpdate
from finmaas.registry.tables import drift_counts

APPLICANT = (
    load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).head(8).to_dict(orient="records")
)


def copy_home(
    served: Settings,
    folder: Path,
    update: ModelUpdate | None = None,
    *,
    keep_drift_counts: bool = True,
) -> Settings:
    """A private copy of the served home in ``folder``, for a test that changes
    credit-risk's policy (``update``) or counts drift from zero."""
    shutil.copytree(served.home, folder / "home")
    settings = Settings(home=folder / "home")
    registry = Registry.open(settings)
    try:
        if update is not None:
            registry.update_model("credit-risk", update, actor="local:setup")
        if not keep_drift_counts:  # other tests' traffic is stored in the shared home
            with registry.write() as conn:
                conn.execute(sa.delete(drift_counts))
    finally:
        registry.close()
    return settings


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


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("served") / "home"
    settings = Settings(home=home)
    registry = Registry.open(settings)
    try:
        run_quickstart(
            registry,
            LocalArtifactStore(settings.resolved_artifacts_dir),
            actor=Actor("t"),
            folds=2,
        )
    finally:
        registry.close()
    return settings


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


@pytest.fixture(scope="module")
def live_server(served_home: Settings) -> Iterator[LiveServer]:
    server = start_server(served_home)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        yield http


CATEGORY_FEATURES = {k for k, v in APPLICANT[0].items() if isinstance(v, str)}


def feature_tensors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One V2 input tensor per feature: BYTES for categories, INT64 for numbers."""
    tensors = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        datatype = "BYTES" if name in CATEGORY_FEATURES else "INT64"
        tensors.append({"name": name, "datatype": datatype, "shape": [len(rows)], "data": values})
    return tensors
