"""Model inventory routes: the models a key may see, one model, its versions, one
version, and a version's card, drift report and explanation profile.

A key sees the models of its tenant and those its grants name; the table checks the
``metadata`` verb on ``{name}`` before any of these handlers runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from finmaas.api.context import Call, Services
from finmaas.api.params import query_date, version_number
from finmaas.errors import Invalid, NotFound
from finmaas.monitoring.report import drift_report, thresholds_of, window_dates
from finmaas.registry.records import Model, ModelVersion
from finmaas.web.http import Response, json_response

MARKDOWN = b"text/markdown; charset=utf-8"


async def list_models(api: Services, call: Call) -> Response:
    """The active models the key sees (``?all=1``: archived ones too), each with its aliases."""
    include_archived = call.request.query.get("all") in ("1", "true")
    models = await asyncio.to_thread(
        lambda: api.registry.list_models(include_archived=include_archived)
    )
    snapshot = await asyncio.to_thread(api.registry.alias_snapshot)
    names = set(api.guard.visible(call.principal, [m.name for m in models]))
    aliases: dict[str, dict[str, int]] = {}
    for (model, alias), version in snapshot.aliases.items():
        aliases.setdefault(model, {})[alias] = version
    return json_response(
        {"models": [_model(m, aliases.get(m.name, {})) for m in models if m.name in names]}
    )


async def show_model(api: Services, call: Call) -> Response:
    name = call.params["name"]
    model = await asyncio.to_thread(lambda: api.registry.get_model(name))
    aliases = await asyncio.to_thread(lambda: api.registry.list_aliases(name))
    return json_response(_model(model, {a.name: a.version for a in aliases}))


async def list_versions(api: Services, call: Call) -> Response:
    """Every version of the model, archived ones included, oldest first."""
    name = call.params["name"]
    versions = await asyncio.to_thread(lambda: api.registry.list_versions(name))
    return json_response({"versions": [version_json(v) for v in versions]})


async def show_version(api: Services, call: Call) -> Response:
    """One version in full; ``{version}`` is a number or an alias."""
    name, ref = call.params["name"], call.params["version"]
    selected: int | str = version_number(ref) if ref[:1].isdigit() else ref
    found = await asyncio.to_thread(lambda: api.registry.get_version(name, selected))
    return json_response(version_json(found))


async def version_card(api: Services, call: Call) -> Response:
    """The version's model card, as Markdown."""
    found = await _version(api, call)
    return Response(200, found.model_card.encode(), MARKDOWN)


async def version_explanation(api: Services, call: Call) -> Response:
    """The global view of a version's explanations: inputs by mean |contribution|."""
    found = await _version(api, call)
    profile = found.explanation
    if profile is None or profile.get("method") is None:
        raise NotFound(f"{found.ref} has no explanation profile")
    importance = sorted(profile["global_importance"].items(), key=lambda item: -item[1])
    return json_response(
        {
            "model": found.model,
            "version": found.version,
            "method": profile["method"],
            "reference": profile["reference"],
            "reference_rows": profile["reference_rows"],
            "base_value": profile["base_value"],
            "global_importance": [
                {"feature": feature, "mean_abs_contribution": value}
                for feature, value in importance
            ],
            "reason_texts": profile["reason_texts"],
        }
    )


async def version_drift(api: Services, call: Call) -> Response:
    """The version's drift (PSI) against its reference over a window of days:
    ``?window=`` or ``?since=&until=``."""
    name, number = call.params["name"], version_number(call.params["version"])
    query = call.request.query
    unknown = set(query) - {"window", "since", "until"}
    if unknown:
        raise Invalid(f"unknown query parameter {sorted(unknown)[0][:64]!r}")
    since, until = window_dates(
        query.get("window"),
        query_date(query, "since"),
        query_date(query, "until"),
        api.registry.now().date(),
    )
    version = await asyncio.to_thread(lambda: api.registry.get_version(name, number))
    model = await asyncio.to_thread(lambda: api.registry.get_model(name))
    stored = await asyncio.to_thread(lambda: api.drift.window(name, number, since, until))
    return json_response(
        drift_report(
            version,
            stored,
            since=since,
            until=until,
            min_rows=api.settings.drift_min_rows,
            thresholds=thresholds_of(model),
        )
    )


async def _version(api: Services, call: Call) -> ModelVersion:
    name, number = call.params["name"], version_number(call.params["version"])
    return await asyncio.to_thread(lambda: api.registry.get_version(name, number))


def version_json(version: ModelVersion) -> dict[str, Any]:
    """Every field of a version (times in ISO 8601) and its ``ref``."""
    return {**dataclasses.asdict(version), "ref": version.ref}


def _model(model: Model, aliases: dict[str, int]) -> dict[str, Any]:
    return {
        "id": model.id,
        "name": model.name,
        "task": model.task,
        "description": model.description,
        "owner": model.owner,
        "tenant": model.tenant,
        "risk_tier": model.risk_tier,
        "intended_use": model.intended_use,
        "validation_status": model.validation_status,
        "next_review": model.next_review.isoformat() if model.next_review else None,
        "protected_aliases": list(model.protected_aliases),
        "max_concurrency": model.max_concurrency,
        "monitoring": model.monitoring.to_json(),
        "latest_version": model.latest_version,
        "status": model.status,
        "tags": model.tags,
        "created_by": model.created_by,
        "created_at": model.created_at.isoformat(),
        "updated_at": model.updated_at.isoformat(),
        "aliases": aliases,
    }
