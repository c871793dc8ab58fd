"""Register an ``llm`` version backed by an endpoint (an OpenAI-compatible upstream).

The version's artifact is the endpoint's spec, a canonical JSON document
(:class:`~finmaas.schema.llm_endpoint.EndpointSpec`, format ``llm-endpoint``), stored
by its sha256 like any model file: immutability, the digest, diff, archive and purge
come from the registry as they are. Its signature is the fixed
:data:`~finmaas.schema.signature.LLM_SIGNATURE` (task ``llm``).

At push the upstream is checked (:func:`finmaas.engines.upstream.check_upstream`):
it must list the upstream model and complete one token; the result is recorded in the
version's params (``upstream_check``) and metrics (``upstream_latency_ms``), or the
push is refused with the upstream's URL and what failed. ``check=False`` registers an
endpoint that is not up yet, recorded as ``unchecked``. The credential is resolved
for the check only; the registry, the card and the audit log see its reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from finmaas.actor import Actor
from finmaas.engines.credentials import resolve_credential
from finmaas.engines.upstream import UpstreamCheck, check_upstream
from finmaas.publish.publishing import record_version
from finmaas.registry import ArtifactStore, ModelVersion, NewModel, NewVersion, Registry
from finmaas.registry.names import check_model_name
from finmaas.runtimes.formats import ModelFormat
from finmaas.schema.llm_endpoint import EndpointSpec
from finmaas.schema.signature import LLM_SIGNATURE


def publish_endpoint(
    registry: Registry,
    store: ArtifactStore,
    name: str,
    spec: EndpointSpec,
    *,
    actor: Actor,
    check: bool = True,
    metrics: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    parent_version: int | None = None,
    lineage: dict[str, Any] | None = None,
    model_card: str = "",
    model_spec: NewModel | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ModelVersion:
    """Check the upstream (unless ``check`` is false) and record ``spec`` as the next
    version of ``name``. ``transport``: for tests, an httpx transport to the upstream."""
    check_model_name(name)
    metrics, params = dict(metrics or {}), dict(params or {})
    for reserved in ("endpoint", "upstream_check"):
        params.pop(reserved, None)
    result: UpstreamCheck | None = None
    if check:
        secret = resolve_credential(spec.credential) if spec.credential else None
        result = check_upstream(spec.url, spec.upstream_model, api_key=secret, transport=transport)
        params["upstream_check"] = result.to_dict()
        metrics["upstream_latency_ms"] = round(result.latency_ms, 1)
    else:
        params["upstream_check"] = {"status": "unchecked"}
    params["endpoint"] = spec.to_dict()
    lineage = dict(lineage or {})
    if not model_card:
        model_card = build_endpoint_card(
            name, spec, result, description=model_spec.description if model_spec else ""
        )
    data = spec.canonical_bytes()
    stored = store.put_bytes(data)
    version = NewVersion(
        artifact_digest=stored.digest,
        artifact_format=ModelFormat.LLM_ENDPOINT.value,
        artifact_size=stored.size,
        signature=LLM_SIGNATURE,
        metrics=metrics,
        params=params,
        tags=tags or {},
        parent_version=parent_version,
        lineage=lineage,
        model_card=model_card,
    )
    return record_version(registry, store, name, version, actor=actor, model_spec=model_spec)


def check_summary(params: Mapping[str, Any]) -> str:
    """One line on a version's push check, from its params."""
    found = params.get("upstream_check") or {}
    if found.get("status") != "ok":
        return "upstream not checked at push (--no-check)"
    return (
        f"upstream checked: ok in {found.get('latency_ms')} ms, "
        f"it answered as model {found.get('reported_model') or '(not reported)'!r}"
    )


def build_endpoint_card(
    name: str, spec: EndpointSpec, result: UpstreamCheck | None, *, description: str = ""
) -> str:
    """The model card of an endpoint version: what it calls, at what price, how checked."""
    prices = (
        f"- per million prompt tokens: {_shown(spec.price_prompt)}",
        f"- per million completion tokens: {_shown(spec.price_completion)}",
    )
    params = ", ".join(f"{k}={v:g}" for k, v in sorted(spec.params.items())) or "none"
    credential = "none"
    if spec.credential:
        credential = f"`{spec.credential}` (a reference; the key is not stored)"
    if result is None:
        checked = "Not checked at push (registered with --no-check)."
    else:
        checked = (
            f"At push the upstream listed `{spec.upstream_model}` and completed one token in "
            f"{result.latency_ms:.0f} ms, answering as model "
            f"`{result.reported_model or 'not reported'}`."
        )
    parts = [
        f"# Model card: {name}",
        description.strip() or "_No description was given._",
        "## Intended use",
        "A generative language model (chat messages in, text out) run by an upstream "
        "engine; finmaas serves it on its OpenAI-compatible routes with keys, limits, "
        "metering and records. Its answers are generated text: review them as the bank's "
        "model policy requires.",
        "## Endpoint",
        "\n".join(
            (
                f"- base URL: `{spec.url}`",
                f"- upstream model: `{spec.upstream_model}`",
                f"- credential: {credential}",
                f"- context length: {spec.context_length or 'not recorded'}",
                f"- default parameters: {params}",
            )
        ),
        "## Prices",
        "\n".join(prices),
        "## Check at push",
        checked,
        "## Limitations",
        "- The weights and their training data are the upstream's; finmaas records the "
        "endpoint, not what it runs. A change behind the same URL and model id is not seen "
        "by the registry.",
    ]
    return "\n\n".join(parts) + "\n"


def _shown(price: object) -> str:
    return "not recorded" if price is None else str(price)
