"""Model registry: metadata (Registry) and artifact bytes (ArtifactStore)."""

from finmaas.registry.artifacts import ArtifactStore, LocalArtifactStore, StoredArtifact
from finmaas.registry.records import (
    Alias,
    AliasEvent,
    AliasSnapshot,
    Model,
    ModelVersion,
    MonitoringPolicy,
    NewModel,
    NewVersion,
)
from finmaas.registry.registry import Registry

__all__ = [
    "Alias",
    "AliasEvent",
    "AliasSnapshot",
    "ArtifactStore",
    "LocalArtifactStore",
    "Model",
    "ModelVersion",
    "MonitoringPolicy",
    "NewModel",
    "NewVersion",
    "Registry",
    "StoredArtifact",
]
