"""Side-by-side comparison of two versions (``finmaas models diff``)."""

from __future__ import annotations

from dataclasses import dataclass

from finmaas.registry.records import ModelVersion


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
class VersionComparison:
    left: ModelVersion
    right: ModelVersion
    metrics: tuple[MetricRow, ...]
    features: tuple[FeatureChange, ...]

    @property
    def size_ratio(self) -> float:
        return (
            self.right.artifact_size / self.left.artifact_size if self.left.artifact_size else 0.0
        )


def compare_versions(left: ModelVersion, right: ModelVersion) -> VersionComparison:
    names = sorted(set(left.metrics) | set(right.metrics))
    metrics = tuple(MetricRow(n, left.metrics.get(n), right.metrics.get(n)) for n in names)
    return VersionComparison(left, right, metrics, tuple(_feature_changes(left, right)))


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
