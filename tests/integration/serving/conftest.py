"""Fixtures of the serving tests: the quickstart's home (built once a session), the app
in process over a copy of it (``served_app`` and its ``client``), and a real server
for the tests that need a socket (``live_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from finmaas.config import Settings
from tests.integration.serving.homes import build_quickstart_home, copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import LiveServer, start_server, stop_server


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_quickstart_home(tmp_path_factory.mktemp("served") / "home")


@pytest.fixture(scope="module")
def served_app(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """The protocol tests' server in process: ``--insecure-no-auth`` on a private copy
    of the served home, shared by the tests of a module."""
    server = serve_in_process(copy_home(served_home, tmp_path_factory.mktemp("app")))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def client(served_app: InProcessServer) -> Iterator[httpx.Client]:
    with served_app.client() as http:
        yield http


@pytest.fixture(scope="session")
def live_server(served_home: Settings) -> Iterator[LiveServer]:
    """A real server (``--insecure-no-auth``) on the served home, for the few protocol
    tests that need a socket; nothing may change its state."""
    server = start_server(served_home)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def live_client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        yield http
