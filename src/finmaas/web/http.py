"""The few ASGI primitives the data plane needs, without a framework.

Per-request overhead dominates small tabular models, so requests are routed
and answered with plain ASGI messages: one body read (bounded), one
``http.response.start`` and one ``http.response.body``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from finmaas.errors import Invalid
from finmaas.schema.numbers import float_literal, integer_literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
MAX_JSON_DEPTH = 1024
"""orjson's own limit on nesting; records and tensors need fewer than 5 levels."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
"""Sent on every response: bodies are data (never rendered, framed or cached), and
predictions may concern a person, so no cache keeps them."""


class BodyTooLarge(Invalid):
    pass


@dataclass(slots=True)
class Request:
    """One request, read. Per-request objects are plain slotted dataclasses, not frozen
    ones (a frozen one costs 0.6 µs more to build); treat them as read-only."""

    method: str
    path: str
    query_string: bytes
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Response:
    """One response (read-only, like :class:`Request`)."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


async def read_request(
    scope: Scope, receive: Receive, max_body: int, headers: dict[bytes, bytes] | None = None
) -> Request:
    """Read the whole body (at most ``max_body`` bytes); ``headers``: the scope's, as a dict,
    when the caller has built it already."""
    if headers is None:
        headers = dict(scope["headers"])
    check_declared_length(headers, max_body)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_body:
                raise BodyTooLarge(f"request body is over the {max_body} byte limit")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return Request(scope["method"], scope["path"], scope.get("query_string", b""), headers, body)


def check_declared_length(headers: dict[bytes, bytes], max_body: int) -> None:
    """Refuse a body whose ``Content-Length`` is over ``max_body``, before reading any of it."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise BodyTooLarge(f"request body is {int(declared)} bytes; the limit is {max_body}")


UNREAD_BODY_KEPT = 64 * 1024
"""The largest body a connection is kept open for when the body was refused unread: the
server (uvicorn) reads and drops that much anyway. A larger or unsized one closes the
connection, so none of it is read."""

CLOSE: tuple[tuple[bytes, bytes], ...] = ((b"connection", b"close"),)


def unread_body_headers(headers: dict[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """``Connection: close`` for a refusal that leaves a large (or chunked) body unread."""
    declared = headers.get(b"content-length")
    if declared is None:
        return CLOSE if b"transfer-encoding" in headers else ()
    if declared.isdigit() and int(declared) <= UNREAD_BODY_KEPT:
        return ()
    return CLOSE


async def send_response(
    send: Send, response: Response, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", str(len(response.body)).encode()),
        *SECURITY_HEADERS,
        *response.headers,
        *extra,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def parse_json(body: bytes, *, beyond_double: bool = False) -> Any:
    """The JSON document of a body, or :class:`Invalid` saying where it broke.

    ``beyond_double`` (inference bodies): a number beyond the double range
    (``1e400``) is valid JSON that orjson refuses; it is then read as a
    :class:`BeyondDouble`, so the signature check names the field it was sent for.
    """
    if not body:
        raise Invalid("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if beyond_double and str(exc).startswith("number is infinity"):
            return _parse_beyond_double(body)
        raise Invalid(_json_problem(exc, body)) from None


def _parse_beyond_double(body: bytes) -> Any:
    """The slow path for a body orjson refused only for a number beyond the double range."""
    try:
        document = json.loads(
            body,
            parse_int=integer_literal,
            parse_float=float_literal,
            parse_constant=_not_a_json_number,
        )
        # What orjson would refuse to write (a lone surrogate) is refused here as well.
        orjson.dumps(document, default=float)
    except json.JSONDecodeError as exc:
        raise Invalid(f"malformed JSON: {exc.msg}: line {exc.lineno} column {exc.colno}") from None
    except _NotJson:
        raise Invalid(_NOT_NUMBERS) from None
    except RecursionError:
        raise Invalid(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (TypeError, ValueError) as exc:
        raise Invalid(f"malformed JSON: {str(exc)[:200]}") from None
    return document


class _NotJson(Exception):
    pass


def _not_a_json_number(text: str) -> Any:
    raise _NotJson(text)


_NOT_NUMBERS = (
    "NaN and Infinity are not numbers JSON allows; send null for a missing value "
    "(accepted where the signature marks the field nullable)"
)


def _json_problem(exc: orjson.JSONDecodeError, body: bytes) -> str:
    text = str(exc)
    if text.startswith("depth limit exceeded"):
        return f"JSON is nested deeper than {MAX_JSON_DEPTH} levels"
    at = exc.pos
    if "infinity" in text or body[at : at + 3].lower() in (b"nan", b"inf"):
        return _NOT_NUMBERS
    return f"malformed JSON: {text}"


def reject_unknown_fields(document: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """The documented rule: a request field finmaas does not know is an error, never ignored."""
    if not allowed.issuperset(document):
        unknown = sorted(key for key in document if key not in allowed)[0]
        raise Invalid(
            f"unknown field {unknown[:64]!r} in {where}; allowed: {', '.join(sorted(allowed))}"
        )


def require_json(request: Request) -> None:
    content_type = request.header(b"content-type")
    if content_type is not None and not content_type.split(b";")[0].strip().lower().endswith(
        b"json"
    ):
        shown = content_type.decode("latin-1")[:100]
        raise UnsupportedMediaType(
            f"content type {shown!r} is not supported; send application/json"
        )


class UnsupportedMediaType(Invalid):
    pass
