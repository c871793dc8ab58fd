"""Register an in-memory model: ``finmaas.register(name, model, X_sample, ...)``.

Picks the safe file format for the model's library (LightGBM text, XGBoost
UBJ, skops for scikit-learn, ONNX as is), infers the signature from the sample,
checks that the served encoding scores the sample exactly as the model does,
captures a reference profile and records the metrics.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finmaas.actor import Actor, local_actor
from finmaas.config import Settings
from finmaas.errors import Invalid
from finmaas.publish.model_cards import CardContext
from finmaas.publish.publishing import MAX_PROFILE_ROWS, publish_bytes
from finmaas.registry import ArtifactStore, LocalArtifactStore, ModelVersion, NewModel, Registry
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.runtimes.skops import is_trusted_type
from finmaas.schema import build_reference_profile, encode_frame, infer_signature
from finmaas.schema.signature import ModelSignature, Task, missing_positive_class


@dataclass(frozen=True)
class SerialisedModel:
    data: bytes
    fmt: ModelFormat
    task: Task | None
    classes: tuple[str, ...] | None


def serialise_model(model: Any) -> SerialisedModel:
    """Turn a fitted model into bytes of a format that holds data, not code."""
    module = type(model).__module__.split(".")[0]
    if module == "lightgbm":
        booster = model.booster_ if hasattr(model, "booster_") else model
        objective = str(booster.params.get("objective", booster.dump_model()["objective"]))
        classes = _classes(model)
        return SerialisedModel(
            booster.model_to_string().encode(), ModelFormat.LIGHTGBM, _task(objective), classes
        )
    if module == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        return SerialisedModel(
            bytes(booster.save_raw("ubj")),
            ModelFormat.XGBOOST_UBJ,
            _task(objective),
            _classes(model),
        )
    if module == "onnx":
        return SerialisedModel(model.SerializeToString(), ModelFormat.ONNX, None, None)
    if module == "sklearn" or (hasattr(model, "fit") and hasattr(model, "get_params")):
        from sklearn.base import is_classifier, is_regressor

        classes = _classes(model)
        task: Task | None = None
        if is_classifier(model) and classes is not None:
            task = "binary" if len(classes) == 2 else "multiclass"
        elif is_regressor(model):
            task = "regression"
        return SerialisedModel(_skops_bytes(model), ModelFormat.SKOPS, task, classes)
    raise Invalid(
        f"cannot register a {type(model).__module__}.{type(model).__name__}: supported are "
        "LightGBM, XGBoost, scikit-learn estimators and ONNX ModelProto"
    )


_SKOPS_WAY_OUT = (
    "build it from scikit-learn's own estimators and transformers only (no lambdas, "
    "functions or classes of your own), or train it on finmaas.schema.encode_frame(signature, "
    "data), convert it to ONNX with skl2onnx and register the ModelProto"
)


def _skops_bytes(model: Any) -> bytes:
    """``model`` saved with skops; refused, saying what to do, when finmaas would not load it."""
    import skops.io as sio

    kind = type(model).__name__
    try:
        data = bytes(sio.dumps(model))
        listed = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises whatever the object it cannot save raises
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise Invalid(
            f"cannot save the scikit-learn model ({kind}) with skops ({detail}); {_SKOPS_WAY_OUT}"
        ) from exc
    refused = sorted(name for name in listed if not is_trusted_type(name))
    if refused:
        raise Invalid(
            f"the scikit-learn model ({kind}) holds types finmaas does not load from skops "
            f"files ({', '.join(refused)}); {_SKOPS_WAY_OUT}"
        )
    return data


def register(
    name: str,
    model: Any,
    X_sample: pd.DataFrame,  # noqa: N803 - scikit-learn's name for a feature matrix
    *,
    y: Sequence[Any] | None = None,
    task: Task | None = None,
    classes: Sequence[str] | None = None,
    positive_class: str | None = None,
    signature: ModelSignature | None = None,
    pii: Collection[str] = (),
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    lineage: Mapping[str, Any] | None = None,
    parent_version: int | None = None,
    model_card: str = "",
    card_context: CardContext | None = None,
    trained_on_encoded: bool = False,
    description: str = "",
    owner: str = "",
    settings: Settings | None = None,
    registry: Registry | None = None,
    store: ArtifactStore | None = None,
    actor: Actor | None = None,
    explanation_reference: str = "sample",
    reason_codes: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register ``model`` as the next version of ``name`` and return the version.

    ``X_sample`` is a sample of the inputs (ideally the training data): it
    fixes the signature (unless ``signature`` is given) and the reference
    profile. The model may have been trained on the signature's encoding
    (``finmaas.schema.encode_frame``), on a DataFrame whose categorical columns
    are pandas categoricals in the same order, or (scikit-learn) on the raw
    DataFrame, text categories and all: it is then served that frame. Unless
    ``trained_on_encoded`` says the model was fitted on ``encode_frame`` output,
    the model's own scores on the raw sample must equal the served scores.

    A binary model needs ``positive_class``, the class whose probability it
    returns (for credit: the adverse one, ``bad``), unless ``signature`` names it.
    ``classes`` are in the model's order (a scikit-learn style model's
    ``classes_`` give them); classes taken from the labels ``y`` are sorted with
    the positive class last. With ``y`` (the outcome of each sample row), a
    binary model whose scores rank the positive class below chance (AUC < 0.5)
    is refused and the AUC is recorded as ``reference_auc``.
    The sample is also the reference of the version's explanations
    (``explanation_reference``: the whole ``sample`` or the approvals near the
    ``cutoff``); ``reason_codes`` maps inputs to adverse-action reason texts.
    """
    if not isinstance(X_sample, pd.DataFrame) or X_sample.empty:
        raise Invalid("X_sample must be a non-empty pandas DataFrame of model inputs")
    serialised = serialise_model(model)
    task = task or serialised.task
    if task is None:
        raise Invalid(f"cannot tell the task of this {serialised.fmt} model; pass task=")
    if y is not None and len(y) != len(X_sample):
        raise Invalid(f"y has {len(y)} labels for {len(X_sample)} rows of X_sample")
    if signature is not None:
        if positive_class is not None and positive_class != signature.positive_class:
            raise Invalid(
                f"positive_class {positive_class!r} differs from the signature's "
                f"{signature.positive_class!r}"
            )
    else:
        if task == "binary" and positive_class is None:
            raise Invalid(missing_positive_class("pass positive_class="))
        classes = _model_classes(classes, serialised, task, y, positive_class)
        signature = infer_signature(
            X_sample,
            task=task,
            classes=classes,
            positive_class=positive_class if task == "binary" else None,
            pii=pii,
        )
    sample = X_sample.iloc[:MAX_PROFILE_ROWS]
    encoded = encode_frame(signature, sample)
    predictor = load_predictor(serialised.data, serialised.fmt, signature)
    scores = predictor.predict(encoded)
    if not trained_on_encoded:
        _check_same_scores(model, sample, scores)
    profile = build_reference_profile(signature, encoded, scores)

    own_registry = registry is None
    settings = settings or Settings()
    registry = registry or Registry.open(settings)
    store = store or LocalArtifactStore(
        settings.resolved_artifacts_dir, max_bytes=settings.max_artifact_bytes
    )
    actor = actor or local_actor()
    try:
        return publish_bytes(
            registry,
            store,
            name,
            serialised.data,
            filename=f"{name}.{serialised.fmt.value}",
            signature=signature,
            actor=actor,
            fmt=serialised.fmt,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            tags=dict(tags or {}),
            lineage={"produced_by": "finmaas.register", **dict(lineage or {})},
            parent_version=parent_version,
            reference_profile=profile.model_dump(mode="json"),
            reference_sample=sample,
            reference_labels=(
                None if y is None or signature.task != "binary" else list(y)[:MAX_PROFILE_ROWS]
            ),
            reference_target="y",
            explanation_reference=explanation_reference,
            reason_codes=reason_codes,
            model_card=model_card,
            card_context=card_context,
            model_spec=NewModel(description=description, owner=owner, tenant=actor.tenant),
        )
    finally:
        if own_registry:
            registry.close()


def _model_classes(
    classes: Sequence[str] | None,
    serialised: SerialisedModel,
    task: Task,
    y: Sequence[Any] | None,
    positive_class: str | None,
) -> Sequence[str] | None:
    """The classes in the model's order: as given, the model's own, or the labels'
    values sorted with the positive class last; ``0, 1`` for a binary model."""
    if classes is not None or task == "regression":
        return classes
    if serialised.classes is not None:
        return serialised.classes
    if y is not None:
        values = sorted({str(v) for v in y})
        if positive_class in values:
            values = [*(v for v in values if v != positive_class), positive_class]
        return tuple(values)
    return ("0", "1") if task == "binary" else None


def _check_same_scores(model: Any, sample: pd.DataFrame, served: np.ndarray) -> None:
    native = _native_scores(model, sample)
    if native is None:
        return
    native = native.reshape(served.shape) if native.size == served.size else native
    if native.shape != served.shape or not np.allclose(native, served, atol=1e-5, equal_nan=True):
        gap = (
            float(np.nanmax(np.abs(native - served)))
            if native.shape == served.shape
            else float("nan")
        )
        raise Invalid(
            "the model scores X_sample differently once it is encoded for serving "
            f"(largest difference {gap:.3g}); train it on "
            "finmaas.schema.encode_frame(signature, data) and pass trained_on_encoded=True"
        )


def _native_scores(model: Any, sample: pd.DataFrame) -> np.ndarray | None:
    """The model's own scores on the raw sample, or None when it cannot read it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _try_native_scores(model, sample)


def _try_native_scores(model: Any, sample: pd.DataFrame) -> np.ndarray | None:
    try:
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(sample), dtype=np.float64)
            return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
        if type(model).__module__.startswith("onnx"):
            return None
        if type(model).__module__.startswith("xgboost"):
            return np.asarray(model.inplace_predict(sample), dtype=np.float64)
        return np.asarray(model.predict(sample), dtype=np.float64)
    except Exception:  # a model trained on encoded arrays may not read the raw frame
        return None


def _task(objective: str) -> Task | None:
    objective = objective.split(":")[0].split(" ")[0].lower()
    if objective in ("binary", "cross_entropy", "xentropy"):
        return "binary"
    if objective in ("multiclass", "multiclassova", "multi", "softmax", "multiclass_ova"):
        return "multiclass"
    if objective in (
        "reg",
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "poisson",
        "quantile",
        "mape",
        "gamma",
        "tweedie",
        "count",
        "survival",
    ):
        return "regression"
    return None


def _classes(model: Any) -> tuple[str, ...] | None:
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    return tuple(str(c) for c in classes)
