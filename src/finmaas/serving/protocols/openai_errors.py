"""finmaas errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status is the data plane's (:mod:`finmaas.web.statuses`, looked up along the MRO), so
an OpenAI client and a KServe client see the same status for the same refusal; the
``type`` and ``code`` are the ones OpenAI uses for that status, which its SDKs and
retry logic read. A refusal carries the same headers (``Retry-After``,
``WWW-Authenticate``) as on the other protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import orjson

from finmaas.errors import FinmaasError, NotFound, PersonalDataBlocked, RateLimited
from finmaas.serving.protocols.openai_fields import InvalidParam
from finmaas.web.http import Response
from finmaas.web.statuses import error_headers, status_of

ERROR_KINDS: Mapping[int, tuple[str, str | None]] = MappingProxyType(
    {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        403: ("permission_error", "permission_denied"),
        404: ("invalid_request_error", "model_not_found"),
        409: ("invalid_request_error", "conflict"),
        413: ("invalid_request_error", "request_too_large"),
        415: ("invalid_request_error", "unsupported_media_type"),
        429: ("rate_limit_error", "rate_limit_exceeded"),
        500: ("server_error", None),
        501: ("invalid_request_error", "not_supported"),
        502: ("server_error", "upstream_error"),
        503: ("service_unavailable_error", "service_unavailable"),
        504: ("server_error", "upstream_timeout"),
    }
)
"""Status → OpenAI's ``type`` and ``code`` for it."""

QUOTA_REASONS = frozenset({"quota", "token_quota", "budget"})
"""A 429 for these is OpenAI's ``insufficient_quota``: waiting a minute does not help."""
INTERNAL_ERROR = "internal server error"


def openai_error(exc: BaseException) -> Response:
    """The response for ``exc``: its status, OpenAI's error body and the refusal's headers.

    Anything that is not a :class:`FinmaasError` is a bare 500 (the caller logs it);
    its text never reaches the client.
    """
    if not isinstance(exc, FinmaasError):
        return Response(500, _body(INTERNAL_ERROR, "server_error", None, None))
    status = status_of(exc)
    kind, code = ERROR_KINDS.get(status, ERROR_KINDS[500])
    param = exc.param if isinstance(exc, InvalidParam) else None
    if isinstance(exc, NotFound):
        param = "model"
    elif isinstance(exc, RateLimited) and exc.reason in QUOTA_REASONS:
        kind = code = "insufficient_quota"
    elif isinstance(exc, PersonalDataBlocked):
        code = "personal_data_blocked"
    return Response(status, _body(exc.message, kind, param, code), headers=error_headers(exc))


def _body(message: str, kind: str, param: str | None, code: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})
