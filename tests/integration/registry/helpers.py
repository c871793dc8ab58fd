"""Small builders for registry tests."""

from __future__ import annotations

import hashlib

from finmaas.registry import NewVersion
from finmaas.schema import Feature, ModelSignature

SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
    inputs=(
        Feature(name="income", dtype="float", min=0),
        Feature(name="purpose", dtype="category", categories=("car", "house")),
    ),
)


def new_version(seed: str = "a", **fields: object) -> NewVersion:
    values: dict[str, object] = {
        "artifact_digest": hashlib.sha256(seed.encode()).hexdigest(),
        "artifact_format": "lightgbm",
        "artifact_size": 10,
        "signature": SIGNATURE,
        "metrics": {"auc": 0.75},
    }
    values.update(fields)
    return NewVersion(**values)  # type: ignore[arg-type]
