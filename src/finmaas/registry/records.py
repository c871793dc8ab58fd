"""Immutable records the Registry returns; no I/O, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from finmaas.schema.signature import ModelSignature, signature_from_stored

Status = Literal["active", "archived"]
ValidationStatus = Literal["draft", "validated", "approved", "rejected", "retired"]
VALIDATION_STATUSES: tuple[str, ...] = ("draft", "validated", "approved", "rejected", "retired")
DEFAULT_PROTECTED_ALIASES: tuple[str, ...] = ("production",)


@dataclass(frozen=True)
class Model:
    id: int
    name: str
    description: str
    owner: str
    task: str
    tags: dict[str, str]
    status: Status
    latest_version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    tenant: str = "default"
    risk_tier: int | None = None
    intended_use: str = ""
    validation_status: str = "draft"
    next_review: date | None = None
    protected_aliases: tuple[str, ...] = DEFAULT_PROTECTED_ALIASES
    max_concurrency: int | None = None
    monitoring: MonitoringPolicy = field(default_factory=lambda: MonitoringPolicy())


@dataclass(frozen=True)
class MonitoringPolicy:
    """How a model is watched: its drift bands, prediction-log sampling and whether
    its decisions are recorded (``models update --drift-watch …``)."""

    drift_watch: float = 0.10
    """PSI/CSI from which an index is in the ``watch`` band."""
    drift_alert: float = 0.25
    """PSI/CSI from which an index is in the ``alert`` band."""
    log_sample_rate: float = 0.0
    """Share of served requests whose inputs and outputs go to the prediction log."""
    decisions: bool = False
    """A decision model: every served row is kept as a decision record."""

    def to_json(self) -> dict[str, Any]:
        return {
            "drift_watch": self.drift_watch,
            "drift_alert": self.drift_alert,
            "log_sample_rate": self.log_sample_rate,
            "decisions": self.decisions,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> MonitoringPolicy:
        return cls(**value) if value else cls()


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    status: Status
    artifact_digest: str
    artifact_format: str
    artifact_size: int
    signature_json: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    parent_version: int | None
    lineage: dict[str, Any]
    reference_profile: dict[str, Any] | None
    model_card: str
    created_by: str
    created_at: datetime
    archived_at: datetime | None
    artifact_purged_at: datetime | None
    aliases: tuple[str, ...] = ()
    explanation: dict[str, Any] | None = None
    """The explanation profile (:mod:`finmaas.explain.profile`), when one was built."""

    @property
    def signature(self) -> ModelSignature:
        return signature_from_stored(self.signature_json)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Alias:
    model: str
    name: str
    version: int
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class AliasEvent:
    model: str
    alias: str
    action: Literal["set", "rollback", "delete"]
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime


@dataclass(frozen=True)
class AliasSnapshot:
    """Active model names and ``(model, alias) → version`` at one moment."""

    models: frozenset[str]
    aliases: dict[tuple[str, str], int]


@dataclass(frozen=True)
class NewModel:
    """Model-level fields used when a push creates the model."""

    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    tenant: str = "default"
    risk_tier: int | None = None
    intended_use: str = ""
    next_review: date | None = None


@dataclass(frozen=True)
class ModelUpdate:
    """Inventory fields to change on a model; ``None`` leaves a field as it is."""

    description: str | None = None
    owner: str | None = None
    risk_tier: int | None = None
    intended_use: str | None = None
    validation_status: str | None = None
    next_review: date | None = None
    protected_aliases: tuple[str, ...] | None = None
    max_concurrency: int | None = None
    """Most requests in flight for the model across all workers; 0 removes the cap."""
    drift_watch: float | None = None
    drift_alert: float | None = None
    log_sample_rate: float | None = None
    decisions: bool | None = None


@dataclass(frozen=True)
class Approval:
    """A validator's recorded outcome for one version."""

    model: str
    version: int
    decision: Literal["approved", "rejected"]
    note: str
    actor: str
    at: datetime
    tenant: str | None = None
    """The validator's tenant when it decided; ``None``: unknown (see migration 0007)."""
    role: str | None = None
    """The validator's role when it decided; ``None``: unknown."""


@dataclass(frozen=True)
class NewVersion:
    """Everything a version is published with; the registry assigns the number."""

    artifact_digest: str
    artifact_format: str
    artifact_size: int
    signature: ModelSignature
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    parent_version: int | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    reference_profile: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None
    model_card: str = ""
