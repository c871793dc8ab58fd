"""An endpoint version published over ``/api`` (``Client.publish_endpoint``'s body):
who may, what the server resolves, what it answers; with the app in process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.test_tenant_authz import InProcessApi
from tests.llm.engine import LlamaServer

MARKER = "sk-marker-api-93b7"
KEY_VAR = "FINMAAS_UPSTREAM_API_KEY"
KEYS = {
    "a_developer": ("developer", "tenant-a"),
    "a_validator": ("validator", "tenant-a"),
    "a_auditor": ("auditor", "tenant-a"),
    "a_consumer": ("consumer", "tenant-a"),
    "b_developer": ("developer", "tenant-b"),
}


@pytest.fixture
def api(settings: Settings) -> Iterator[InProcessApi]:
    registry = Registry.open(settings)
    try:
        store = KeyStore(registry)
        tokens = {
            name: issue_key(
                store,
                name=name.replace("_", "-"),
                role=role,
                tenant=tenant,
                actor=Actor("local:setup"),
            ).token
            for name, (role, tenant) in KEYS.items()
        }
    finally:
        registry.close()
    served = InProcessApi(settings, tokens)
    try:
        yield served
    finally:
        served.close()


def _body(url: str, **endpoint: Any) -> dict[str, Any]:
    return {"endpoint": {"url": url, "upstream_model": "tiny-llama", **endpoint}}


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def test_a_developer_publishes_an_endpoint_checked_on_the_server(
    api: InProcessApi, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, MARKER)
    body = _body(
        llama_server.base_url,
        credential=f"env:{KEY_VAR}",
        price_prompt="0.25",
        params={"temperature": 0.1},
    )
    published = api.call("a_developer", "POST", "/api/models/memo-llm/versions", body)
    assert published.status_code == 201, published.text
    answer = published.json()
    assert (answer["ref"], answer["artifact_format"]) == ("memo-llm@1", "llm-endpoint")
    assert answer["endpoint"]["credential"] == f"env:{KEY_VAR}"
    assert answer["endpoint"]["price_prompt"] == "0.25"
    assert answer["upstream_check"]["status"] == "ok"
    for path in (
        "/api/models/memo-llm",
        "/api/models/memo-llm/versions",
        "/api/models/memo-llm/versions/1",
        "/api/models/memo-llm/versions/1/card",
        "/api/audit",
    ):
        shown = api.call("a_developer", "GET", path)
        assert MARKER not in shown.text, path
    assert MARKER not in published.text

    other = api.call("b_developer", "POST", "/api/models/memo-llm/versions", body)
    assert _error(other) == (409, "model name 'memo-llm' is not available; choose another")
    for key in ("a_validator", "a_auditor", "a_consumer"):
        refused = api.call(key, "POST", "/api/models/memo-llm/versions", body)
        assert refused.status_code == 403, (key, refused.text)
        assert refused.json()["error"] == (
            f"this needs the role developer; the key's role is {KEYS[key][0]}"
        ), key


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            {"credential": "env:FINMAAS_DATABASE_URL"},
            "over /api a credential must be env:FINMAAS_UPSTREAM_<NAME>, a variable the "
            "server's operator set for upstreams; other variables and files stay on the "
            "server (register such an endpoint with the local CLI there)",
        ),
        (
            {"credential": "file:/etc/shadow"},
            "over /api a credential must be env:FINMAAS_UPSTREAM_<NAME>, a variable the "
            "server's operator set for upstreams; other variables and files stay on the "
            "server (register such an endpoint with the local CLI there)",
        ),
        (
            {"url": "http://u:p@h/v1"},
            "the endpoint URL must not carry a user or password; "
            "pass the secret with --credential env:VAR or file:PATH",
        ),
        (
            {"price_completion": -2},
            "the price per million completion tokens must be a "
            "non-negative decimal up to 1000000, got '-2'",
        ),
        (
            {"params": {"seed": 1}},
            "unknown parameter 'seed'; allowed: max_tokens, temperature, top_p",
        ),
        (
            {"api_key": "x"},
            "unknown endpoint field 'api_key'; allowed: context_length, "
            "credential, format_version, params, price_completion, price_prompt, "
            "upstream_model, url",
        ),
    ],
)
def test_bad_endpoint_bodies_are_400_and_publish_nothing(
    api: InProcessApi, endpoint: dict[str, Any], message: str
) -> None:
    body = _body("http://127.0.0.1:9/v1")
    body["endpoint"].update(endpoint)
    body["check"] = False
    refused = api.call("a_developer", "POST", "/api/models/memo-llm/versions", body)
    assert _error(refused) == (400, message)
    assert api.call("a_developer", "GET", "/api/models/memo-llm").status_code == 404


def test_a_dead_upstream_is_a_400_naming_it(api: InProcessApi) -> None:
    refused = api.call(
        "a_developer", "POST", "/api/models/memo-llm/versions", _body("http://127.0.0.1:9/v1")
    )
    assert _error(refused) == (
        400,
        "upstream http://127.0.0.1:9/v1/models: cannot connect (connection refused)",
    )
    mixed = api.call(
        "a_developer",
        "POST",
        "/api/models/memo-llm/versions",
        {**_body("http://127.0.0.1:9/v1"), "signature": {}},
    )
    assert _error(mixed)[0] == 400
