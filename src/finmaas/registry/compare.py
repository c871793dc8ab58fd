"""Side-by-side comparison of two versions (``finmaas models diff``), and the
changes of meaning that moving an alias between them makes (task, classes and
positive class), which :func:`finmaas.registry.aliases.set_alias` asks to accept.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmaas.registry.records import ModelVersion
from finmaas.schema.signature import ModelSignature

MEANING_FIELDS = ("task", "classes", "positive class")
"""What a client reads differently when it changes: a probability of another class,
labels the other way round."""


@dataclass(frozen=True)
class MetricRow:
    name: str
    left: float | None
    right: float | None

    @property
    def delta(self) -> float | None:
        if self.left is None or self.right is None:
            return None
        return self.right - self.left


@dataclass(frozen=True)
class FeatureChange:
    name: str
    change: str
    """``added``, ``removed`` or what changed (``dtype float → int``, ``categories +2 −1`` …)."""


@dataclass(frozen=True)
class SignatureField:
    """One field of the two versions' signatures (or their decision threshold)."""

    name: str
    """``task``, ``classes``, ``positive class``, ``outputs`` or ``decision threshold``."""
    left: str
    right: str
    change: str
    """What changed, ``""`` when nothing did: ``left → right``, or for the same
    classes in another order ``order left → right``."""

    @classmethod
    def of(cls, name: str, left: tuple[str, ...], right: tuple[str, ...]) -> SignatureField:
        shown_left, shown_right = ", ".join(left) or "—", ", ".join(right) or "—"
        if left == right:
            change = ""
        elif sorted(left) == sorted(right):
            change = f"order {shown_left} → {shown_right}"
        else:
            change = f"{shown_left} → {shown_right}"
        return cls(name, shown_left, shown_right, change)


@dataclass(frozen=True)
class VersionComparison:
    left: ModelVersion
    right: ModelVersion
    metrics: tuple[MetricRow, ...]
    features: tuple[FeatureChange, ...]
    fields: tuple[SignatureField, ...]
    """Task, classes, positive class, outputs and decision threshold, side by side."""

    @property
    def field_changes(self) -> tuple[SignatureField, ...]:
        return tuple(field for field in self.fields if field.change)

    @property
    def size_ratio(self) -> float:
        return (
            self.right.artifact_size / self.left.artifact_size if self.left.artifact_size else 0.0
        )


def compare_versions(left: ModelVersion, right: ModelVersion) -> VersionComparison:
    names = sorted(set(left.metrics) | set(right.metrics))
    metrics = tuple(MetricRow(n, left.metrics.get(n), right.metrics.get(n)) for n in names)
    fields = (
        *signature_fields(left.signature, right.signature),
        SignatureField.of("decision threshold", _threshold(left), _threshold(right)),
        *endpoint_fields(left, right),
    )
    return VersionComparison(
        left, right, metrics, tuple(_feature_changes(left, right)), tuple(fields)
    )


def signature_fields(left: ModelSignature, right: ModelSignature) -> list[SignatureField]:
    """Task, classes (in order), positive class and outputs of two signatures."""
    return [
        SignatureField.of("task", (left.task,), (right.task,)),
        SignatureField.of("classes", left.classes or (), right.classes or ()),
        SignatureField.of("positive class", _one(left.positive_class), _one(right.positive_class)),
        SignatureField.of(
            "outputs",
            tuple(f"{o.name}:{o.dtype}" for o in left.outputs),
            tuple(f"{o.name}:{o.dtype}" for o in right.outputs),
        ),
    ]


def meaning_changes(left: ModelSignature, right: ModelSignature) -> list[SignatureField]:
    """The task, classes or positive class ``right`` changes from ``left``."""
    return [
        field
        for field in signature_fields(left, right)
        if field.name in MEANING_FIELDS and field.change
    ]


ENDPOINT_FIELDS = (
    ("endpoint", "url"),
    ("upstream model", "upstream_model"),
    ("credential", "credential"),
    ("price prompt", "price_prompt"),
    ("price completion", "price_completion"),
    ("context length", "context_length"),
    ("parameters", "params"),
)
"""An endpoint version's facts (its ``endpoint`` param, the spec that is its artifact):
row name and key. ``credential`` is the reference (``env:VAR``); no value is stored."""


def endpoint_fields(left: ModelVersion, right: ModelVersion) -> list[SignatureField]:
    """The endpoint facts of two ``llm-endpoint`` versions, side by side (none for others)."""
    a, b = left.params.get("endpoint"), right.params.get("endpoint")
    if not isinstance(a, dict) and not isinstance(b, dict):
        return []
    return [SignatureField.of(name, _fact(a, key), _fact(b, key)) for name, key in ENDPOINT_FIELDS]


def _fact(spec: object, key: str) -> tuple[str, ...]:
    value = spec.get(key) if isinstance(spec, dict) else None
    if value is None or value == {}:
        return ()
    if isinstance(value, dict):
        return (", ".join(f"{k}={v}" for k, v in sorted(value.items())),)
    return (str(value),)


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _threshold(version: ModelVersion) -> tuple[str, ...]:
    if version.signature.task != "binary":
        return ()
    from finmaas.schema.output_rule import decision_threshold  # numpy: not for `models list`

    return (f"{decision_threshold(version.metrics, version.params):.4g}",)


def _feature_changes(left: ModelVersion, right: ModelVersion) -> list[FeatureChange]:
    before = {f.name: f for f in left.signature.inputs}
    after = {f.name: f for f in right.signature.inputs}
    changes: list[FeatureChange] = []
    for name in before.keys() - after.keys():
        changes.append(FeatureChange(name, "removed"))
    for name in after.keys() - before.keys():
        changes.append(FeatureChange(name, "added"))
    for name in before.keys() & after.keys():
        old, new = before[name], after[name]
        parts = []
        if old.dtype != new.dtype:
            parts.append(f"dtype {old.dtype} → {new.dtype}")
        if old.categories != new.categories:
            gained = len(set(new.categories or ()) - set(old.categories or ()))
            lost = len(set(old.categories or ()) - set(new.categories or ()))
            parts.append(f"categories +{gained} −{lost}" if gained or lost else "category order")
        if (old.min, old.max) != (new.min, new.max):
            parts.append(f"range [{old.min}, {old.max}] → [{new.min}, {new.max}]")
        if old.nullable != new.nullable:
            parts.append(f"nullable {old.nullable} → {new.nullable}")
        if old.pii != new.pii:
            parts.append(f"pii {old.pii} → {new.pii}")
        if parts:
            changes.append(FeatureChange(name, ", ".join(parts)))
    old_order = [f for f in left.signature.feature_names if f in after]
    new_order = [f for f in right.signature.feature_names if f in before]
    if old_order != new_order:
        changes.append(FeatureChange("(order)", "input order changed"))
    return sorted(changes, key=lambda c: c.name)
