"""Load a registered version into a ready ``Predictor``.

The artifact's bytes are verified against the recorded sha256 before the
runtime sees them; the serving pool and ``finmaas models verify`` use this.
"""

from __future__ import annotations

from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.runtimes import ModelFormat, Predictor, load_predictor


def load_version(
    registry: Registry,
    store: ArtifactStore,
    name: str,
    ref: int | str,
    *,
    allow_pickle: bool = False,
) -> tuple[ModelVersion, Predictor]:
    version = registry.get_version(name, ref)
    return version, load_artifact(store, version, allow_pickle=allow_pickle)


def load_artifact(
    store: ArtifactStore, version: ModelVersion, *, allow_pickle: bool = False
) -> Predictor:
    data = store.read(version.artifact_digest)
    return load_predictor(
        data, ModelFormat(version.artifact_format), version.signature, allow_pickle=allow_pickle
    )
