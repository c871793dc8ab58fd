"""Bounds and checks for the free-form metadata of models and versions."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from finmaas.errors import Invalid

MAX_METRICS = 200
MAX_TAGS = 64
MAX_PARAMS_BYTES = 256 * 1024
MAX_LINEAGE_BYTES = 64 * 1024
MAX_PROFILE_BYTES = 8 * 1024 * 1024
MAX_MODEL_CARD = 1024 * 1024
MAX_TEXT = 10_000
MAX_ACTOR = 200

_KEY = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters: they forge log lines and rewrite terminals, so values refuse them."""
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""The same, less the line breaks and tabs that free text (descriptions, notes) may hold."""


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    if len(metrics) > MAX_METRICS:
        raise Invalid(f"metrics: at most {MAX_METRICS} entries, got {len(metrics)}")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        _check_key("metrics", key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"metrics.{key} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise Invalid(f"metrics.{key} must be a finite number, got {value!r}")
        out[key] = float(value)
    return out


def check_tags(tags: Mapping[str, Any], where: str = "tags") -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise Invalid(f"{where}: at most {MAX_TAGS} entries, got {len(tags)}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        _check_key(where, key)
        if not isinstance(value, str) or len(value) > 256:
            raise Invalid(f"{where}.{key} must be a string of at most 256 characters")
        if _CONTROL.search(value):
            raise Invalid(f"{where}.{key} must not contain control characters")
        out[key] = value
    return out


def check_json(name: str, value: Any, limit: int) -> Any:
    """Check that ``value`` is plain JSON of at most ``limit`` bytes; return it normalised."""
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise Invalid(f"{name} must be JSON-serialisable: {exc}") from None
    if len(encoded) > limit:
        raise Invalid(f"{name} must be at most {limit} bytes as JSON, got {len(encoded)}")
    return orjson.loads(encoded)


def check_text(name: str, value: str, limit: int = MAX_TEXT, *, one_line: bool = False) -> str:
    """Free text (``one_line``: a name-like value such as an owner or an actor)."""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text")
    if len(value) > limit:
        raise Invalid(f"{name} must be at most {limit} characters, got {len(value)}")
    if one_line and _CONTROL.search(value):
        raise Invalid(f"{name} must be one line without control characters")
    if _CONTROL_IN_TEXT.search(value):
        raise Invalid(f"{name} must not contain control characters (line breaks and tabs may)")
    return value


def _check_key(where: str, key: object) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise Invalid(
            f"{where}: key {key!r} must be 1-64 characters of letters, digits, "
            "'_', '.', ':', '/', '-'"
        )
