"""A small client of an OpenAI-compatible upstream: ``GET {base}/models`` and a
one-token ``POST {base}/chat/completions``, with bounded timeouts.

:func:`check_upstream` is what a push of an endpoint version runs: it returns an
:class:`UpstreamCheck` when the upstream lists the model and answers, and raises
:class:`UpstreamCheckFailed` with a one-line message naming the URL and what failed
otherwise. The credential (already resolved by the caller) is only ever sent as
``Authorization: Bearer``; it is never part of a message or a result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from finmaas.errors import Invalid

CONNECT_TIMEOUT = 5.0
"""Seconds to open the connection to the upstream."""
TOTAL_TIMEOUT = 30.0
"""Seconds for each of the two requests of a check, all in (a cold engine may be slow
to produce its first token)."""
MAX_ERROR_TEXT = 200
"""Characters of an upstream's error body kept in a message."""


class UpstreamCheckFailed(Invalid):
    """The upstream did not answer as an OpenAI-compatible server serving the model."""


@dataclass(frozen=True)
class UpstreamCheck:
    """What a check found: the upstream answered, in ``latency_ms`` (both requests)."""

    latency_ms: float
    listed_models: tuple[str, ...]
    reported_model: str
    """The ``model`` the one-token completion came back with."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "latency_ms": round(self.latency_ms, 1),
            "reported_model": self.reported_model,
            "listed_models": list(self.listed_models[:20]),
        }


def check_upstream(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    timeout: float = TOTAL_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> UpstreamCheck:
    """Check ``base_url`` lists ``model`` and completes one token with it."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Timeout(timeout, connect=connect_timeout)
    base = base_url.rstrip("/")
    started = time.perf_counter()
    with httpx.Client(
        headers=headers, timeout=limits, transport=transport, follow_redirects=False
    ) as client:
        listing = _call(client, "GET", f"{base}/models", None, timeout)
        listed = _model_ids(listing, f"{base}/models")
        if model not in listed:
            shown = ", ".join(listed[:10]) or "none"
            raise UpstreamCheckFailed(
                f"upstream {base}/models does not list model {model!r} (it lists: {shown})"
            )
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        }
        answer = _call(client, "POST", f"{base}/chat/completions", body, timeout)
    latency = (time.perf_counter() - started) * 1000
    reported = answer.get("model") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        raise UpstreamCheckFailed(
            f"upstream {base}/chat/completions did not answer a chat completion (no 'choices')"
        )
    return UpstreamCheck(latency, tuple(listed), str(reported) if reported else "")


def _call(
    client: httpx.Client, method: str, url: str, body: dict[str, Any] | None, timeout: float
) -> Any:
    try:
        response = client.request(method, url, json=body)
    except httpx.ConnectTimeout:
        raise UpstreamCheckFailed(f"upstream {url}: connect timed out") from None
    except httpx.ConnectError as exc:
        raise UpstreamCheckFailed(f"upstream {url}: cannot connect ({_reason(exc)})") from None
    except httpx.TimeoutException:
        raise UpstreamCheckFailed(f"upstream {url}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise UpstreamCheckFailed(f"upstream {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        text = " ".join(response.text.split())[:MAX_ERROR_TEXT]
        detail = f": {text}" if text else ""
        raise UpstreamCheckFailed(f"upstream {url} answered HTTP {response.status_code}{detail}")
    try:
        return response.json()
    except ValueError:
        raise UpstreamCheckFailed(f"upstream {url} did not answer JSON") from None


def _model_ids(listing: Any, url: str) -> list[str]:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        raise UpstreamCheckFailed(f"upstream {url} did not answer an OpenAI model list (no 'data')")
    return [str(entry["id"]) for entry in data if isinstance(entry, dict) and "id" in entry]


def _reason(exc: httpx.ConnectError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "resolve" in text:
        return "host not found"
    return str(exc)[:MAX_ERROR_TEXT] or "connect error"
