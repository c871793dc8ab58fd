"""Model cards: one markdown page per version, stored with it in the registry.

Every version gets one when it is registered (``publish_bytes``), unless the
caller brings its own: intended use, data, features, metrics with their
cross-validation spread, fairness results, limitations, and how the version
was produced. A training template knows the most, and passes it as
:class:`CardContext`; a version pushed by hand gets the sections its metadata
can fill, and says plainly what was not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finmaas.schema.signature import Feature, ModelSignature

_NOT_RECORDED = "Not recorded for this version."


@dataclass(frozen=True)
class DataFacts:
    """What a model was trained on."""

    name: str
    sha256: str
    rows: int
    target: str
    positive: str | None = None
    """The adverse class of a binary target."""
    positive_rate: float | None = None


@dataclass(frozen=True)
class CardContext:
    """What a training run knows beyond the version's metadata."""

    intended_use: str = ""
    data: DataFacts | None = None
    fairness: Sequence[Mapping[str, Any]] = ()
    """:class:`finmaas.training.fairness.FairnessReport` as dicts (``to_json()``)."""
    limitations: Sequence[str] = ()
    selection: str = ""
    """How this version was chosen among the run's candidates."""
    produced_by: Sequence[str] = field(default_factory=tuple)
    """Lines on how it was produced (the command, the template)."""
    comparison: str = ""
    """An optimised version's report against its parent (Markdown)."""


def build_model_card(
    name: str,
    *,
    signature: ModelSignature,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    lineage: Mapping[str, Any],
    description: str = "",
    context: CardContext | None = None,
) -> str:
    """The card's markdown; see the module."""
    context = context or CardContext()
    parts = [f"# Model card: {name}", description.strip() or "_No description was given._"]
    parts += ["## Intended use", context.intended_use.strip() or _default_use(signature)]
    parts += ["## Data", _data(context.data, lineage)]
    parts += ["## Features", _features(signature)]
    parts += ["## Metrics", _metrics(metrics)]
    if context.selection:
        parts.append(context.selection)
    if context.comparison:
        parts += ["## Compared with its parent", context.comparison]
    parts += ["## Fairness", _fairness(context.fairness)]
    parts += ["## Limitations", _bullets([*context.limitations, *_default_limits(metrics)])]
    parts += ["## How it was produced", _produced(context.produced_by, lineage, params)]
    return "\n\n".join(parts) + "\n"


def _default_use(signature: ModelSignature) -> str:
    if signature.task == "binary" and signature.classes:
        return (
            f"Scores the probability of `{signature.classes[1]}` (against "
            f"`{signature.classes[0]}`) for one applicant or case at a time, over the "
            "inputs below. Decisions follow the version's threshold; review them as the "
            "bank's model policy requires."
        )
    if signature.task == "multiclass":
        return f"Classifies a case into one of {len(signature.classes or ())} classes."
    return "Predicts a number from the inputs below."


def _data(data: DataFacts | None, lineage: Mapping[str, Any]) -> str:
    if data is None:
        digest = lineage.get("data_sha256")
        return f"Training data sha256 `{digest}`." if digest else _NOT_RECORDED
    lines = [
        f"- file: `{data.name}`",
        f"- sha256: `{data.sha256}`",
        f"- rows: {data.rows:,}",
        f"- target: `{data.target}`",
    ]
    if data.positive is not None and data.positive_rate is not None:
        lines.append(f"- share of `{data.positive}`: {data.positive_rate:.1%}")
    return "\n".join(lines)


def _features(signature: ModelSignature) -> str:
    rows = ["| input | type | values | notes |", "|---|---|---|---|"]
    for feature in signature.inputs:
        notes = [
            note
            for flag, note in (
                (feature.pii, "pii: masked in logs"),
                (feature.actionable, "actionable"),
                (feature.nullable, "may be missing"),
            )
            if flag
        ]
        rows.append(
            f"| `{feature.name}` | {feature.dtype} | {_values(feature)} | {', '.join(notes)} |"
        )
    return "\n".join(rows)


def _values(feature: Feature) -> str:
    if feature.categories:
        shown = ", ".join(feature.categories[:6])
        more = f" (+{len(feature.categories) - 6} more)" if len(feature.categories) > 6 else ""
        return (shown + more).replace("|", "\\|")
    if feature.min is not None or feature.max is not None:
        low = "" if feature.min is None else f"{feature.min:g}"
        high = "" if feature.max is None else f"{feature.max:g}"
        return f"{low} to {high}"
    return ""


def _metrics(metrics: Mapping[str, float]) -> str:
    names = [name for name in metrics if not name.endswith("_sd")]
    if not names:
        return _NOT_RECORDED
    rows = ["| metric | value | sd across folds |", "|---|---|---|"]
    for name in names:
        spread = metrics.get(f"{name}_sd")
        rows.append(
            f"| {name} | {metrics[name]:.4f} | {'' if spread is None else f'{spread:.4f}'} |"
        )
    if "expected_cost" in metrics and "reject_all_cost" in metrics:
        rows.append("")
        rows.append(
            f"Expected cost per applicant {metrics['expected_cost']:.3f} against "
            f"{metrics['reject_all_cost']:.3f} for rejecting everyone."
        )
    return "\n".join(rows)


def _fairness(reports: Sequence[Mapping[str, Any]]) -> str:
    if not reports:
        return "Not assessed: no protected attribute was named when this version was trained."
    parts = []
    for report in reports:
        rows = [
            f"Protected attribute `{report['protected']}`, decisions at threshold "
            f"{report['threshold']:.3f}, groups under {report['min_group_size']} get no verdict.",
            "",
            "| group | size | approval rate | adverse-impact ratio (95% CI) "
            "| equal-opportunity gap (95% CI) | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for group in report["groups"]:
            rows.append(
                f"| {group['group']} | {group['size']} | {group['approval_rate']:.3f} | "
                f"{_with_interval(group['adverse_impact_ratio'], group['adverse_impact_ci'])} | "
                f"{_with_interval(group['equal_opportunity_gap'], group['equal_opportunity_ci'])}"
                f" | {group['verdict']} |"
            )
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def _with_interval(value: float | None, interval: Sequence[float] | None) -> str:
    if value is None:
        return ""
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _default_limits(metrics: Mapping[str, float]) -> list[str]:
    limits = [
        "Its metrics describe the population it was trained on; watch drift "
        "(`finmaas drift`) before trusting them on today's applicants.",
    ]
    if not metrics:
        limits.append("No validation metrics were registered with it.")
    return limits


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _produced(lines: Sequence[str], lineage: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    parts = [_bullets(lines)] if lines else []
    if lineage:
        parts.append("Lineage:\n\n```json\n" + json.dumps(dict(lineage), indent=2) + "\n```")
    if params:
        text = json.dumps(dict(params), indent=2, default=str)
        if len(text) > 20_000:
            text = text[:20_000] + "\n…"
        parts.append("Parameters:\n\n```json\n" + text + "\n```")
    return "\n\n".join(parts) or _NOT_RECORDED
