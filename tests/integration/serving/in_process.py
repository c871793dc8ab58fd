"""The ASGI app in this process: no socket and no server process.

``AppThread`` runs a started :class:`FinmaasApp` on an event loop in a thread of its
own, so its background work (key and alias refresh, batch timers, drift, decision
and prediction-log writers) goes on between requests as in a server.
``AppTransport`` is a synchronous ``httpx`` transport that hands each request to
``httpx.ASGITransport`` on that loop, so a plain ``httpx.Client`` (and the SDK,
which takes a transport) calls the app as it would call a server.

``serve_in_process`` is the in-process ``start_server``: the same settings, a
client and a transport instead of a port. ``start_in_process`` also copies the
served home and issues a key of each role.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from finmaas.app import FinmaasApp
from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import copy_home

T = TypeVar("T")
BASE_URL = "http://finmaas"
CLIENT = ("127.0.0.1", 40000)


class AppThread:
    """A started app on an event loop that runs in a daemon thread until ``close()``."""

    def __init__(self, app: FinmaasApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="app", daemon=True)
        self._thread.start()
        try:
            self.run(app.startup())
        except BaseException:
            self._stop_loop()
            raise

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``work`` on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.app.shutdown())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


class AppTransport(httpx.BaseTransport):
    """Sends a request through ``httpx.ASGITransport`` on the app's loop; the response
    comes back whole, its body as the app wrote it (undecoded)."""

    def __init__(self, app: AppThread, client: tuple[str, int] = CLIENT) -> None:
        self._app = app
        self._asgi = httpx.ASGITransport(app=app.app, client=client)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()  # the sync client's stream cannot be read on the loop
        return self._app.run(self._send(request, content))

    async def _send(self, request: httpx.Request, content: bytes) -> httpx.Response:
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=content
        )
        response = await self._asgi.handle_async_request(forwarded)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        body = b"".join([chunk async for chunk in response.stream])
        return httpx.Response(response.status_code, headers=response.headers, content=body)


@dataclass
class InProcessServer:
    """What a test uses of a ``LiveServer`` (``url``, ``settings``, ``client()``),
    with the app in this process."""

    settings: Settings
    app: AppThread
    url: str = BASE_URL

    def transport(self, client: tuple[str, int] = CLIENT) -> AppTransport:
        return AppTransport(self.app, client)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport(), base_url=self.url, timeout=10)

    def close(self) -> None:
        self.app.close()


def serve_in_process(
    settings: Settings, *, auth: bool = False, **overrides: Any
) -> InProcessServer:
    """Start the app on ``settings`` as ``start_server`` serves it: one worker, without
    keys unless ``auth`` (``--insecure-no-auth``); no access log unless ``overrides`` ask."""
    flags = {"workers": 1, "access_log": "off", "insecure_no_auth": not auth}
    served = Settings(**{**settings.model_dump(exclude_unset=True), **flags, **overrides})
    return InProcessServer(served, AppThread(FinmaasApp(served)))


@dataclass
class InProcess:
    """An app started in process, with an admin and a consumer key of the default tenant;
    ``others``: a key of each other role of that tenant, and ``stranger``, a consumer of
    another tenant."""

    server: InProcessServer
    http: httpx.Client
    admin: str
    consumer: str
    others: dict[str, str]

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        return self.http.request(method, path, headers=sent, **kwargs)

    def close(self) -> None:
        try:
            self.http.close()
        finally:
            self.server.close()


def start_in_process(served: Settings, folder: Path, **overrides: Any) -> InProcess:
    """Copy ``served`` into ``folder``, issue the keys and start the app; ``close()`` it."""
    copied = copy_home(served, folder)
    registry = Registry.open(copied)
    try:
        keys = KeyStore(registry)
        admin = issue_key(keys, name="admin", role="admin", actor="local:t").token
        consumer = issue_key(keys, name="app", role="consumer", actor="local:t").token
        others = {
            role: issue_key(keys, name=role, role=role, actor="local:t").token
            for role in ("developer", "validator", "auditor")
        }
        others["stranger"] = issue_key(
            keys, name="stranger", role="consumer", tenant="other", actor="local:t"
        ).token
    finally:
        registry.close()
    server = serve_in_process(copied, auth=True, **overrides)
    client = httpx.Client(transport=server.transport(), base_url=server.url, timeout=30)
    return InProcess(server, client, admin, consumer, others)
