"""HTTP status of each finmaas error, for the data-plane protocols (looked up along the MRO)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from finmaas.errors import (
    ArtifactCorrupted,
    Busy,
    Conflict,
    FinmaasError,
    Forbidden,
    Invalid,
    NotFound,
    NotSupported,
    PredictorFailed,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
    UpstreamTimeout,
)
from finmaas.web.http import BodyTooLarge, UnsupportedMediaType

STATUS: Mapping[type[FinmaasError], int] = MappingProxyType(
    {
        BodyTooLarge: 413,
        UnsupportedMediaType: 415,
        Invalid: 400,
        NotFound: 404,
        Unauthenticated: 401,
        Forbidden: 403,
        RateLimited: 429,
        Conflict: 409,
        Unavailable: 503,
        NotSupported: 501,
        # A server-side fault of this copy of the artifact, not of the request: 503,
        # so a client retries on another replica (whose store may be intact).
        ArtifactCorrupted: 503,
        PredictorFailed: 500,
        UpstreamTimeout: 504,
        UpstreamFailed: 502,
        FinmaasError: 500,
    }
)


def status_of(error: FinmaasError) -> int:
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def error_headers(error: FinmaasError) -> list[tuple[bytes, bytes]]:
    """Headers a refusal carries: how to authenticate, or when to retry."""
    if isinstance(error, Unauthenticated):
        return [(b"www-authenticate", b'Bearer realm="finmaas"')]
    if isinstance(error, RateLimited):
        retry = str(error.retry_after).encode()
        headers = [(b"retry-after", retry)]
        if error.limit:
            headers += [
                (b"ratelimit-limit", str(error.limit).encode()),
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", retry),
            ]
        if error.policy:
            headers.append((b"ratelimit-policy", error.policy.encode()))
        return headers
    if isinstance(error, Busy):
        return [(b"retry-after", str(error.retry_after).encode())]
    return []
