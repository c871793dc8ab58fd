"""The ASGI app in this process, over a private copy of the served home, with keys.

No socket and no server process: requests go through ``httpx.ASGITransport`` on
an event loop this helper owns, so a test can send thousands of bodies quickly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from finmaas.app import FinmaasApp
from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.conftest import copy_home


@dataclass
class InProcess:
    """An app started in process, with an admin and a consumer key of the default tenant;
    ``others``: a key of each other role of that tenant, and ``stranger``, a consumer of
    another tenant."""

    app: FinmaasApp
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
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
        return self.loop.run_until_complete(
            self.client.request(method, path, headers=sent, **kwargs)
        )

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self.app.shutdown())
        finally:
            self.loop.close()


def start_in_process(served: Settings, folder: Path, **overrides: Any) -> InProcess:
    """Copy ``served`` into ``folder``, issue the keys and start the app; ``close()`` it."""
    copied = copy_home(served, folder)
    settings = Settings(home=copied.home, **{"access_log": "off", **overrides})
    registry = Registry.open(settings)
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
    app = FinmaasApp(settings)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(app.startup())
    except BaseException:
        loop.close()
        raise
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="http://finmaas", timeout=30)
    return InProcess(app, loop, client, admin, consumer, others)
