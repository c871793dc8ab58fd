"""CORS for the origins a deployment names (``--cors-origin``); off by default.

With no origins configured no ``Access-Control-*`` header is ever sent, so a
web page on another origin cannot read any response. A configured origin is
echoed back exactly (never ``*``); preflights are answered before
authentication, as browsers send them without credentials.
"""

from __future__ import annotations

ALLOWED_METHODS = b"GET, POST, PUT, DELETE"
ALLOWED_HEADERS = b"authorization, x-api-key, content-type, inference-header-content-length"
EXPOSED_HEADERS = (
    b"retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, ratelimit-policy, "
    b"inference-header-content-length"
)
MAX_AGE = b"600"


def response_headers(origin: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """Headers that let the page at ``origin`` read this response."""
    return (
        (b"access-control-allow-origin", origin),
        (b"access-control-expose-headers", EXPOSED_HEADERS),
        (b"vary", b"origin"),
    )


def preflight_headers(origin: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """The answer to ``OPTIONS`` with ``Access-Control-Request-Method`` from ``origin``."""
    return (
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", ALLOWED_METHODS),
        (b"access-control-allow-headers", ALLOWED_HEADERS),
        (b"access-control-max-age", MAX_AGE),
        (b"vary", b"origin"),
    )
