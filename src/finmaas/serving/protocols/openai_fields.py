"""One rule per OpenAI request field, shared by chat completions, completions and embeddings.

Each rule takes the document's value (``None`` when the field is absent or ``null``,
which OpenAI treats alike) and returns it typed, or raises :class:`InvalidParam`
naming the field (``param``), the rule and what was sent. JSON booleans are not
numbers here (Python's ``bool`` is an ``int``, so types are compared exactly).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from finmaas.errors import Invalid, InvalidName
from finmaas.registry.names import (
    MAX_ALIAS_NAME,
    MAX_MODEL_NAME,
    check_alias_name,
    check_model_name,
)

MAX_OUTPUT_TOKENS = 1_048_576
"""The most tokens a request may ask for; an engine's own context bound is checked upstream."""
MAX_STOP = 4
"""OpenAI's bound on stop sequences."""
MAX_STOP_CHARS = 256
MAX_USER_CHARS = 256
MAX_OPAQUE_BYTES = 65_536
"""``response_format``, ``tools`` and ``tool_choice`` are passed through as JSON of at most
this many bytes each."""
MAX_VERSION = 2**31 - 1
MAX_MODEL_REF = MAX_MODEL_NAME + 1 + MAX_ALIAS_NAME
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class InvalidParam(Invalid):
    """A request field that breaks its rule; ``param`` names it as OpenAI's error does."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class ModelRef:
    """``model`` as sent: ``NAME`` (production), ``NAME@alias`` or ``NAME@VERSION``."""

    name: str
    version: int | None = None
    alias: str | None = None
    asked: str = ""
    """The string the client sent, which responses echo as their ``model``."""


def json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words (for messages about a wrong type)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def model_ref(value: Any) -> ModelRef:
    if type(value) is str and len(value) <= MAX_MODEL_REF:
        return _model_ref(value)
    if value is None:
        raise InvalidParam("'model' is required: NAME, NAME@alias or NAME@VERSION", "model")
    if type(value) is not str:
        raise InvalidParam(
            f"'model' must be a string (NAME, NAME@alias or NAME@VERSION), got {json_type(value)}",
            "model",
        )
    return _model_ref(value)


@functools.lru_cache(maxsize=1024)
def _model_ref(value: str) -> ModelRef:
    """Clients send the same few names again and again: each is checked once
    (a refusal raises, and is not cached)."""
    name, at, ref = value.partition("@")
    try:
        check_model_name(name)
        if not at:
            return ModelRef(name, asked=value)
        if ref.isascii() and ref.isdigit():
            if len(ref) > 10 or not 0 < int(ref) <= MAX_VERSION:
                raise InvalidParam(
                    f"'model': version must be a positive integer, got {ref[:40]!r}", "model"
                )
            return ModelRef(name, version=int(ref), asked=value)
        return ModelRef(name, alias=check_alias_name(ref), asked=value)
    except InvalidName as exc:
        raise InvalidParam(f"'model': {exc}", "model") from None


def positive_int(name: str, value: Any, limit: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 < value <= limit:
        raise InvalidParam(
            f"'{name}' must be an integer from 1 to {limit}, got {_shown(value)}", name
        )
    return value


def bounded_int(name: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise InvalidParam(
            f"'{name}' must be an integer from {low} to {high}, got {_shown(value)}", name
        )
    return value


def number(name: str, value: Any, low: float, high: float) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not low <= value <= high:
        raise InvalidParam(
            f"'{name}' must be a number from {low:g} to {high:g}, got {_shown(value)}", name
        )
    return float(value)


def boolean(name: str, value: Any) -> bool | None:
    if value is None:
        return None
    if type(value) is not bool:
        raise InvalidParam(f"'{name}' must be true or false, got {json_type(value)}", name)
    return value


def max_tokens(document: dict[str, Any], *, chat: bool) -> int | None:
    """``max_tokens``, or in chat its successor ``max_completion_tokens``: both may be sent
    only with the same value (``max_tokens`` is the deprecated name of the same bound)."""
    legacy = positive_int("max_tokens", document.get("max_tokens"), MAX_OUTPUT_TOKENS)
    if not chat:
        return legacy
    current = positive_int(
        "max_completion_tokens", document.get("max_completion_tokens"), MAX_OUTPUT_TOKENS
    )
    if legacy is not None and current is not None and legacy != current:
        raise InvalidParam(
            f"'max_tokens' ({legacy}) and 'max_completion_tokens' ({current}) differ; "
            "send only 'max_completion_tokens' ('max_tokens' is its deprecated name)",
            "max_tokens",
        )
    return current if current is not None else legacy


def n_choices(value: Any) -> None:
    if value is None or (type(value) is int and value == 1):
        return
    if type(value) is int and value > 1:
        raise InvalidParam(
            f"'n' must be 1, got {value}: finmaas returns one choice per request; "
            "send separate requests for more answers",
            "n",
        )
    raise InvalidParam(f"'n' must be 1, got {_shown(value)}", "n")


def stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    sequences = [value] if type(value) is str else value
    if (
        type(sequences) is not list
        or not 0 < len(sequences) <= MAX_STOP
        or any(type(item) is not str or not 0 < len(item) <= MAX_STOP_CHARS for item in sequences)
    ):
        raise InvalidParam(
            f"'stop' must be a string or a list of 1 to {MAX_STOP} strings, "
            f"each 1 to {MAX_STOP_CHARS} characters",
            "stop",
        )
    return tuple(sequences)


def user(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) > MAX_USER_CHARS:
        raise InvalidParam(
            f"'user' must be a string of at most {MAX_USER_CHARS} characters, got "
            + (f"{len(value)} characters" if type(value) is str else json_type(value)),
            "user",
        )
    return value


def stream_options(value: Any, stream: bool) -> bool:
    """``include_usage`` of ``stream_options``, which is only allowed with ``stream: true``."""
    if value is None:
        return False
    if not stream:
        raise InvalidParam(
            "'stream_options' is only allowed when 'stream' is true", "stream_options"
        )
    if type(value) is not dict:
        raise InvalidParam(
            f"'stream_options' must be an object, got {json_type(value)}", "stream_options"
        )
    if not {"include_usage"}.issuperset(value):
        unknown = sorted(key for key in value if key != "include_usage")[0]
        raise InvalidParam(
            f"unknown field {unknown[:64]!r} in 'stream_options'; allowed: include_usage",
            "stream_options",
        )
    return bool(boolean("stream_options.include_usage", value.get("include_usage")))


def opaque(name: str, value: Any, kinds: tuple[type, ...]) -> bytes | None:
    """A field finmaas passes through to the engine as it came: its JSON, bounded."""
    if value is None:
        return None
    if type(value) not in kinds:
        wanted = " or ".join(_KIND_NAMES[kind] for kind in kinds)
        raise InvalidParam(f"'{name}' must be {wanted}, got {json_type(value)}", name)
    encoded = orjson.dumps(value)
    if len(encoded) > MAX_OPAQUE_BYTES:
        raise InvalidParam(
            f"'{name}' is {len(encoded)} bytes of JSON; the limit is {MAX_OPAQUE_BYTES}", name
        )
    return encoded


_KIND_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}


def reject_unknown(document: dict[str, Any], allowed: frozenset[str]) -> None:
    if not allowed.issuperset(document):
        unknown = sorted(key for key in document if key not in allowed)[0]
        raise InvalidParam(
            f"unknown field {unknown[:64]!r} in the request body; "
            f"allowed: {', '.join(sorted(allowed))}",
            unknown[:64],
        )


def _shown(value: Any) -> str:
    if type(value) in (int, float):
        return repr(value)
    return json_type(value)
