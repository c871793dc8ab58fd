"""The spec of an ``llm`` version backed by an endpoint: an OpenAI-compatible upstream.

It is the version's artifact (format ``llm-endpoint``): a small canonical JSON
document, stored by its sha256 like every artifact, so the version is immutable and
two versions are diffed field by field. It holds a *reference* to the credential
(``env:VAR`` or ``file:PATH``), never the secret: the reference is resolved where the
upstream is called (:mod:`finmaas.engines.credentials`).

Every rule is checked here, with a message naming the field and the rule; a message
never echoes a credential or a URL's user part, which could be secrets.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import orjson

from finmaas.errors import Invalid

FORMAT_VERSION = 1
MAX_URL_LENGTH = 2_000
MAX_MODEL_ID_LENGTH = 256
MAX_CONTEXT_LENGTH = 10_000_000
MAX_PRICE = Decimal(1_000_000)
"""Per million tokens, in the bank's currency: anything above is a typo."""
PARAMETERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "max_tokens": (int, 1, MAX_CONTEXT_LENGTH),
}
"""The default request parameters a version may carry: type and inclusive bounds
(``top_p`` must be above 0)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CREDENTIAL_RULE = "a credential must be a reference, env:VAR or file:/absolute/path"


@dataclass(frozen=True)
class EndpointSpec:
    """An OpenAI-compatible upstream and the facts a version records about it."""

    url: str
    """The OpenAI base URL (``http://gpu-node:8000/v1``), without a trailing slash."""
    upstream_model: str
    credential: str | None = None
    """``env:VAR`` or ``file:PATH``: where the secret is, never the secret."""
    price_prompt: Decimal | None = None
    """Per million prompt tokens."""
    price_completion: Decimal | None = None
    """Per million completion tokens."""
    context_length: int | None = None
    params: dict[str, float | int] = field(default_factory=dict)
    """Default request parameters: temperature, top_p, max_tokens."""

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON (prices as decimal strings, exact)."""
        return {
            "format_version": FORMAT_VERSION,
            "url": self.url,
            "upstream_model": self.upstream_model,
            "credential": self.credential,
            "price_prompt": None if self.price_prompt is None else str(self.price_prompt),
            "price_completion": (
                None if self.price_completion is None else str(self.price_completion)
            ),
            "context_length": self.context_length,
            "params": dict(sorted(self.params.items())),
        }

    def canonical_bytes(self) -> bytes:
        """The artifact: sorted keys, no whitespace; the same spec gives the same digest."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)


def endpoint_spec(
    url: object,
    upstream_model: object,
    *,
    credential: object = None,
    price_prompt: object = None,
    price_completion: object = None,
    context_length: object = None,
    params: object = None,
) -> EndpointSpec:
    """Check every field; raise :class:`Invalid` naming the first rule broken."""
    if context_length is not None:
        context = _whole(context_length, "context length", 1, MAX_CONTEXT_LENGTH)
    else:
        context = None
    return EndpointSpec(
        url=check_url(url),
        upstream_model=_model_id(upstream_model),
        credential=None if credential is None else check_credential(credential),
        price_prompt=_price(price_prompt, "prompt"),
        price_completion=_price(price_completion, "completion"),
        context_length=context,
        params=check_params(params or {}, context),
    )


def endpoint_spec_from_dict(data: object) -> EndpointSpec:
    """An endpoint document (an ``/api`` body's ``endpoint`` or a stored artifact)."""
    if not isinstance(data, dict):
        raise Invalid("'endpoint' must be an object with 'url' and 'upstream_model'")
    allowed = set(EndpointSpec.__dataclass_fields__) | {"format_version"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(
            f"unknown endpoint field {unknown[0][:64]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    if data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise Invalid(f"endpoint 'format_version' must be {FORMAT_VERSION}")
    return endpoint_spec(
        data.get("url"),
        data.get("upstream_model"),
        credential=data.get("credential"),
        price_prompt=data.get("price_prompt"),
        price_completion=data.get("price_completion"),
        context_length=data.get("context_length"),
        params=data.get("params"),
    )


def endpoint_spec_from_bytes(data: bytes) -> EndpointSpec:
    try:
        return endpoint_spec_from_dict(orjson.loads(data))
    except orjson.JSONDecodeError:
        raise Invalid("the endpoint spec is not valid JSON") from None


def check_url(url: object) -> str:
    """An http(s) URL with a host, and no user part, query or fragment."""
    if not isinstance(url, str) or not url:
        raise Invalid("the endpoint URL is required: the upstream's OpenAI base URL")
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Invalid(
            f"the endpoint URL must be at most {MAX_URL_LENGTH} characters, "
            "without spaces or control characters"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise Invalid("the endpoint URL is not a valid URL") from None
    if "@" in parts.netloc:
        raise Invalid(
            "the endpoint URL must not carry a user or password; "
            "pass the secret with --credential env:VAR or file:PATH"
        )
    if parts.scheme not in ("http", "https"):
        shown = parts.scheme[:20] or "none"
        raise Invalid(f"the endpoint URL must be http or https, not {shown!r}")
    if not parts.hostname:
        raise Invalid("the endpoint URL has no host")
    if parts.query or parts.fragment:
        raise Invalid("the endpoint URL must not have a query or a fragment")
    return url.rstrip("/")


def check_credential(reference: object) -> str:
    """``env:VAR`` (a variable name) or ``file:PATH`` (an absolute path). The value is
    never echoed: a secret passed here by mistake must not reach a log."""
    if not isinstance(reference, str):
        raise Invalid(_CREDENTIAL_RULE)
    kind, _, rest = reference.partition(":")
    if kind == "env" and _ENV_NAME.match(rest):
        return reference
    if kind == "file" and rest.startswith("/") and len(rest) <= 4096 and "\x00" not in rest:
        return reference
    raise Invalid(_CREDENTIAL_RULE)


def check_params(params: object, context_length: int | None = None) -> dict[str, float | int]:
    if not isinstance(params, dict):
        raise Invalid("the endpoint 'params' must be an object of parameter → number")
    checked: dict[str, float | int] = {}
    for key, value in params.items():
        if key not in PARAMETERS:
            raise Invalid(
                f"unknown parameter {str(key)[:64]!r}; allowed: {', '.join(sorted(PARAMETERS))}"
            )
        kind, low, high = PARAMETERS[key]
        if kind is int:
            checked[key] = _whole(value, key, int(low), int(context_length or high))
        else:
            number = _number(value, key)
            if not low <= number <= high or (key == "top_p" and number == 0):
                above = "above" if key == "top_p" else "from"
                raise Invalid(f"{key} must be {above} {low:g} to {high:g}, got {number:g}")
            checked[key] = number
    return checked


def parse_param_pairs(pairs: list[str]) -> dict[str, float | int]:
    """``KEY=VALUE`` options as numbers (``--param temperature=0.2``), not yet checked."""
    parsed: dict[str, float | int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Invalid(f"--param takes KEY=VALUE, got {pair[:64]!r}")
        try:
            parsed[key] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise Invalid(f"parameter {key[:64]!r} must be a number, got {value[:64]!r}") from None
    return parsed


def _model_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("the upstream model id is required: the model name the upstream serves")
    if len(value) > MAX_MODEL_ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Invalid(
            f"the upstream model id must be at most {MAX_MODEL_ID_LENGTH} characters, "
            "without control characters"
        )
    return value


def _price(value: object, which: str) -> Decimal | None:
    if value is None:
        return None
    rule = f"the price per million {which} tokens must be a non-negative decimal"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(rule)
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(f"{rule}, got {str(value)[:32]!r}") from None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise Invalid(f"{rule} up to {MAX_PRICE}, got {str(value)[:32]!r}")
    return Decimal(format(price.normalize(), "f")) if price else Decimal(0)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{name} must be a number")
    if not math.isfinite(value):
        raise Invalid(f"{name} must be a finite number")
    return float(value)


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, got {value}")
    return value
