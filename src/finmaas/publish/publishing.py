"""Publish an artifact as a new version: check it, store it, record it.

The order makes a failed push leave nothing behind: the bytes are sniffed and
loaded by their runtime against the signature *before* anything is written;
only then are they stored (content-addressed) and recorded in one registry
transaction. If that transaction fails, a file no version uses is deleted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from finmaas.actor import Actor
from finmaas.errors import Conflict, Forbidden, Invalid, NotFound, SchemaMismatch
from finmaas.explain.profile import build_explanation_profile
from finmaas.publish.label_check import check_positive_class
from finmaas.publish.model_cards import CardContext, build_model_card
from finmaas.registry import ArtifactStore, ModelVersion, NewModel, NewVersion, Registry
from finmaas.registry.artifacts import StoredArtifact
from finmaas.registry.names import check_model_name
from finmaas.runtimes import ModelFormat, Predictor, check_format, load_predictor
from finmaas.schema import build_reference_profile, encode_frame
from finmaas.schema.output_rule import decision_threshold
from finmaas.schema.signature import ModelSignature, signature_from_dict

if TYPE_CHECKING:
    import pandas as pd

MAX_PROFILE_ROWS = 100_000
"""Rows of a reference sample used for the profile; more adds time, not accuracy."""


def publish_file(
    registry: Registry,
    store: ArtifactStore,
    name: str,
    path: Path,
    *,
    signature: ModelSignature,
    actor: Actor,
    fmt: ModelFormat | None = None,
    allow_pickle: bool = False,
    max_bytes: int = 2 * 1024**3,
    filename: str | None = None,
    **fields: Any,
) -> ModelVersion:
    """Push a model file; see :func:`publish_bytes` for the fields. ``filename``: the
    name shown in messages (default: the file's own).

    The store hashes and copies the file from disk; its bytes are read once, because
    the runtime loads the model from them to check it against the signature."""
    check_model_name(name)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound(f"file {str(path)!r} does not exist") from None
    if path.is_dir():
        raise Invalid(f"{str(path)!r} is a folder, not a model file")
    shown = path.name if filename is None else filename
    if size > max_bytes:
        raise Invalid(f"file {shown!r} is {size} bytes, over the {max_bytes} byte limit")
    return publish_bytes(
        registry,
        store,
        name,
        path.read_bytes(),
        filename=shown,
        signature=signature,
        actor=actor,
        fmt=fmt,
        allow_pickle=allow_pickle,
        stored_from=path,
        **fields,
    )


def publish_bytes(
    registry: Registry,
    store: ArtifactStore,
    name: str,
    data: bytes,
    *,
    filename: str,
    signature: ModelSignature,
    actor: Actor,
    fmt: ModelFormat | None = None,
    allow_pickle: bool = False,
    metrics: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    parent_version: int | None = None,
    lineage: dict[str, Any] | None = None,
    reference_profile: dict[str, Any] | None = None,
    reference_sample: pd.DataFrame | None = None,
    reference_labels: Sequence[object] | None = None,
    reference_target: str = "target",
    model_card: str = "",
    card_context: CardContext | None = None,
    model_spec: NewModel | None = None,
    explanation_reference: str = "sample",
    reason_codes: Mapping[str, object] | None = None,
    stored_from: Path | None = None,
) -> ModelVersion:
    """Check ``data`` is a loadable model of ``signature``, store it and record a version.

    ``stored_from``: a file holding exactly ``data``, which the store then hashes and
    copies from disk instead of from memory.

    ``reference_sample`` (raw inputs, e.g. the training data) is scored by the
    model to capture the reference profile, unless ``reference_profile`` is given.
    ``reference_labels`` (the ``reference_target`` column's values on those rows)
    check a binary model's positive class: the push is refused when its scores
    rank that class below chance, and the AUC is recorded as ``reference_auc``.
    Without a ``model_card``, one is written from the metadata and ``card_context``.
    """
    check_model_name(name)
    # Validated again: a model_copy or model_construct skips the signature's rules
    # (a binary one without its positive class above all).
    signature = signature_from_dict(signature.to_dict())
    detected = check_format(data, fmt, filename=filename)
    lineage = dict(lineage or {})
    if detected is ModelFormat.PICKLE:
        _check_pickle_allowed(actor, allow_pickle)
        lineage["pickle_allowed_by"] = actor.name
    predictor = load_predictor(data, detected, signature, allow_pickle=allow_pickle)
    smoke_test(predictor, signature)
    explanation = None
    metrics, params = dict(metrics or {}), dict(params or {})
    if reference_labels is not None and reference_sample is None:
        raise Invalid("a reference target needs the reference sample it labels")
    if reference_sample is not None:
        if reference_sample.empty:
            raise Invalid("the reference sample has no rows")
        encoded = encode_frame(signature, reference_sample.iloc[:MAX_PROFILE_ROWS])
        scores = (
            predictor.predict(encoded)
            if reference_profile is None or reference_labels is not None
            else None
        )
        if reference_labels is not None:
            assert scores is not None
            labels = list(reference_labels)
            if len(labels) != len(reference_sample):
                raise Invalid(
                    f"the reference target has {len(labels)} values for "
                    f"{len(reference_sample)} reference rows"
                )
            check = check_positive_class(
                signature, labels[:MAX_PROFILE_ROWS], scores, target=reference_target
            )
            metrics["reference_auc"] = check.auc
            params["reference_labels"] = check.params(str(signature.positive_class))
        if reference_profile is None:
            assert scores is not None
            reference_profile = build_reference_profile(signature, encoded, scores).model_dump(
                mode="json"
            )
        explanation = build_explanation_profile(
            predictor,
            signature,
            encoded,
            threshold=decision_threshold(metrics, params),
            reference=explanation_reference,
            reason_texts=reason_codes,
        ).model_dump(mode="json")
    elif reason_codes:
        raise Invalid("reason codes need a reference sample: explanations are measured on it")

    if not model_card:
        model_card = build_model_card(
            name,
            signature=signature,
            metrics=metrics,
            params=params,
            lineage=lineage,
            description=model_spec.description if model_spec else "",
            context=card_context,
        )
    if stored_from is None:
        stored = store.put_bytes(data)
    else:
        stored = _put_file(registry, store, stored_from, data)
    version = NewVersion(
        artifact_digest=stored.digest,
        artifact_format=detected.value,
        artifact_size=stored.size,
        signature=signature,
        metrics=metrics,
        params=params,
        tags=tags or {},
        parent_version=parent_version,
        lineage=lineage,
        reference_profile=reference_profile,
        explanation=explanation,
        model_card=model_card,
    )
    return record_version(registry, store, name, version, actor=actor, model_spec=model_spec)


def record_version(
    registry: Registry,
    store: ArtifactStore,
    name: str,
    version: NewVersion,
    *,
    actor: Actor,
    model_spec: NewModel | None,
) -> ModelVersion:
    """Record ``version``, whose artifact is already stored, as the next version of
    ``name``; if the record fails, the artifact is deleted unless another version uses it."""
    try:
        return registry.publish_version(
            name, version, actor=actor, model_spec=model_spec or NewModel(tenant=actor.tenant)
        )
    except BaseException:
        if not registry.versions_using_artifact(version.artifact_digest):
            store.delete(version.artifact_digest)
        raise


def split_target(frame: pd.DataFrame, target: str, source: str) -> tuple[pd.DataFrame, Any]:
    """A reference sample's inputs and its ``target`` column (the labels), apart."""
    if target not in frame.columns:
        raise Invalid(f"the reference target column {target!r} is not in {source}")
    return frame.drop(columns=[target]), frame[target]


def _put_file(registry: Registry, store: ArtifactStore, path: Path, data: bytes) -> StoredArtifact:
    """Store ``path``, which must still hold the ``data`` that was checked."""
    stored = store.put_file(path)
    if stored.digest != hashlib.sha256(data).hexdigest():
        if not registry.versions_using_artifact(stored.digest):
            store.delete(stored.digest)
        raise Conflict(f"file {path.name!r} changed while it was being published; try again")
    return stored


def _check_pickle_allowed(actor: Actor, allow_pickle: bool) -> None:
    if not allow_pickle:
        raise Forbidden(
            "pickle/joblib files execute code when loaded; refused. Export the model as "
            "ONNX, LightGBM text, XGBoost JSON/UBJ or skops, or (admins only) pass --allow-pickle"
        )
    if not actor.is_admin:
        raise Forbidden(f"{actor.name} is not an admin; only admins may push pickle files")


def smoke_test(predictor: Predictor, signature: ModelSignature) -> None:
    """Score one neutral row (zero or the minimum, empty text) and check the output
    fits the signature's task."""
    text = any(feature.dtype == "string" for feature in signature.inputs)
    row = np.zeros((1, len(signature.inputs)), dtype=object if text else np.float64)
    for col, feature in enumerate(signature.inputs):
        row[0, col] = "" if feature.dtype == "string" else float(feature.min or 0.0)
    scores = np.asarray(predictor.predict(row))
    if signature.task == "multiclass":
        expected: tuple[int, ...] = (1, len(signature.classes or ()))
    else:
        expected = (1,)
    if scores.shape != expected:
        raise SchemaMismatch(
            f"the signature says {signature.task} with output shape {expected} per batch of one, "
            f"but the model returned shape {scores.shape}"
        )
    if not all(math.isfinite(float(v)) for v in scores.ravel()):
        raise SchemaMismatch("the model returned a non-finite score for a neutral row")
    if signature.task != "regression" and not ((scores >= 0) & (scores <= 1)).all():
        raise SchemaMismatch(
            f"the signature says {signature.task} but the model's outputs are not probabilities "
            f"(got {float(scores.ravel()[0]):g})"
        )
