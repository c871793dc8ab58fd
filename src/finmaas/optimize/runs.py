"""An optimisation run: a registered version in, a cheaper version out, with proof.

:func:`optimize_version` is what ``finmaas optimize`` and ``finmaas convert`` run.

1. The parent must be a live (not archived) binary-classification version the
   actor's tenant owns, and the method must apply to its format; otherwise a
   clear error, before any work.
2. The data file (``data``) is read and checked against the parent's signature.
   Its rows are split, stratified by the label when ``target`` is given and
   seeded: ``tuning_share`` of them *tune* the child (calibration of static
   quantisation, fine-tuning of a pruned network, the tree count of a pruned
   ensemble, the student's training rows), the rest *evaluate* it. The
   registry keeps no copy of a version's training rows (they may hold
   personal data), so the caller brings them; rows the parent never saw give
   honest absolute figures, and the deltas are paired either way.
3. The child is built, then :func:`finmaas.optimize.report.compare` measures
   parent and child on the evaluation rows, :func:`check_gate` refuses a
   child that loses more than ``max_metric_drop`` allows and
   :func:`check_speedup` one slower than ``min_speedup`` × its parent.
4. Only then is the child published as the next version of the same model:
   ``parent_version`` set, the method and its parameters in ``params``, the
   report in ``lineage["report"]`` and in its model card, and the parent's
   decision threshold and reason texts carried over, so swapping an alias to
   it changes the cost, not the decision rule. No alias moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from finmaas.actor import Actor
from finmaas.errors import Forbidden, Invalid
from finmaas.optimize.convert import CONVERTIBLE, convert
from finmaas.optimize.distill import STUDENTS, Student, check_jitter, distill, neighbours_of
from finmaas.optimize.prune import (
    STRUCTURES,
    TREE_FORMATS,
    PruneStructure,
    check_sparsity,
    prune_network,
    prune_trees,
)
from finmaas.optimize.quantize import MODES, QuantizeMode, quantize
from finmaas.optimize.report import (
    Artifact,
    Report,
    check_gate,
    check_min_speedup,
    check_speedup,
    compare,
    parse_gate,
    render,
)
from finmaas.publish.model_cards import CardContext, DataFacts
from finmaas.publish.publishing import MAX_PROFILE_ROWS, publish_bytes
from finmaas.registry import ArtifactStore, Model, ModelVersion, NewModel, Registry
from finmaas.registry.names import check_model_name
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.schema import ModelSignature, encode_frame
from finmaas.schema.output_rule import decision_threshold
from finmaas.training.data import check_columns, read_table
from finmaas.training.metrics import DEFAULT_COSTS, CostMatrix, check_int
from finmaas.training.runs import library_versions

Method = Literal["quantize", "prune", "distill", "convert"]
METHODS: tuple[Method, ...] = get_args(Method)
MIN_ROWS_PER_PART = 10
"""Rows of each class (or rows, without labels) the tuning and evaluation parts need."""


@dataclass(frozen=True)
class OptimizeRun:
    """What ``finmaas optimize`` (or ``convert``) was asked for."""

    name: str
    version: int
    method: Method
    data: Path
    target: str | None = None
    """The label column; needed for metrics, a gate and choosing a tree count."""
    max_metric_drop: dict[str, float] = field(default_factory=dict)
    """Metric → the most the child may lose of it (e.g. ``{"auc": 0.005}``)."""
    min_speedup: float | None = None
    """The least the child's rows/s may be, as a multiple of its parent's (e.g. 1.2)."""
    tuning_share: float = 0.5
    seed: int = 42
    mode: QuantizeMode = "dynamic"
    sparsity: float = 0.5
    structure: PruneStructure = "units"
    fine_tune_epochs: int = 50
    keep_trees: int | None = None
    student: Student = "lightgbm"
    trees: int = 50
    leaves: int = 8
    hidden: int = 16
    neighbours: int = 20
    jitter: float = 0.1
    description: str = ""

    def parameters(self) -> dict[str, Any]:
        """The method's own parameters, as the child's lineage records them."""
        own = {
            "quantize": ("mode",),
            "prune": ("sparsity", "structure", "fine_tune_epochs", "keep_trees"),
            "distill": ("student", "trees", "leaves", "hidden", "neighbours", "jitter"),
            "convert": (),
        }[self.method]
        return {
            key: value
            for key, value in asdict(self).items()
            if key in own or key in ("tuning_share", "seed")
        }


@dataclass(frozen=True)
class OptimizedVersion:
    version: ModelVersion
    report: Report
    markdown: str


@dataclass(frozen=True)
class _Rows:
    x_tune: NDArray[np.float64]
    y_tune: NDArray[np.int_] | None
    x_eval: NDArray[np.float64]
    y_eval: NDArray[np.int_] | None
    x_all: NDArray[np.float64]
    features: pd.DataFrame


def optimize_version(
    run: OptimizeRun,
    registry: Registry,
    store: ArtifactStore,
    *,
    actor: Actor,
    max_bytes: int,
    progress: Callable[[str], None] | None = None,
) -> OptimizedVersion:
    """Check, build, compare, gate and register; see the module."""
    say = progress or (lambda _: None)
    model, parent = check_parent(run, registry, actor)
    gate = parse_gate(run.max_metric_drop)
    signature = parent.signature
    fmt = ModelFormat(parent.artifact_format)

    say(f"reading {run.data.name}")
    table = read_table(run.data, max_bytes=max_bytes)
    rows = _rows(table.frame, signature, run)
    say(
        f"{len(rows.x_tune):,} tuning rows, {len(rows.x_eval):,} evaluation rows "
        f"of {len(table.frame):,}"
    )
    parent_data = store.read(parent.artifact_digest)
    say(f"{run.method}: building the child of {parent.ref}")
    child_data, child_fmt, facts = _build(run, parent_data, fmt, signature, rows)

    say("comparing parent and child on the evaluation rows")
    threshold = decision_threshold(parent.metrics, parent.params)
    report = compare(
        Artifact(parent_data, fmt),
        Artifact(child_data, child_fmt),
        signature,
        rows.x_eval,
        rows.y_eval,
        threshold=threshold,
        costs=_costs(parent),
    )
    markdown = render(report, f"parent ({parent.ref})", "this version")
    check_gate(report, gate)
    check_speedup(report, run.min_speedup)

    say(f"registering the child of {parent.ref}")
    description = run.description or f"{parent.ref} after {run.method} ({_summary(run, facts)})."
    command = (
        "finmaas convert" if run.method == "convert" else f"finmaas optimize --method {run.method}"
    )
    explanation = parent.explanation or {}
    lineage = {
        "produced_by": command.split(" --")[0],
        "parent": parent.ref,
        "parent_digest": parent.artifact_digest,
        "method": run.method,
        "parameters": run.parameters(),
        "data": table.name,
        "data_format": table.file_format,
        "data_sha256": table.sha256,
        "data_rows": len(table.frame),
        "tuning_rows": len(rows.x_tune),
        "evaluation_rows": len(rows.x_eval),
        "seed": run.seed,
        "gate": gate,
        "min_speedup": run.min_speedup,
        "report": report.to_json(),
        "libraries": library_versions(),
    }
    version = publish_bytes(
        registry,
        store,
        run.name,
        child_data,
        filename=f"{run.name}.{child_fmt.value}",
        signature=signature,
        actor=actor,
        fmt=child_fmt,
        metrics={**report.child.metrics, "threshold": threshold},
        params={"method": run.method, **facts, "decision_threshold": threshold},
        tags={"optimized_from": parent.ref, "method": run.method},
        parent_version=parent.version,
        lineage=lineage,
        reference_sample=rows.features.iloc[:MAX_PROFILE_ROWS],
        explanation_reference=explanation.get("reference", "sample"),
        reason_codes=explanation.get("reason_texts") or None,
        card_context=CardContext(
            data=DataFacts(
                name=table.name,
                sha256=table.sha256,
                rows=len(table.frame),
                target=run.target or "",
                positive=signature.classes[1] if signature.classes else None,
                positive_rate=(
                    float(np.mean(np.concatenate([rows.y_tune, rows.y_eval])))
                    if rows.y_tune is not None and rows.y_eval is not None
                    else None
                ),
            ),
            comparison=markdown,
            limitations=[
                f"Metrics measured on {report.rows} held-out rows of `{table.name}`, not "
                "cross-validated: compare them with the parent's figures in the table above, "
                "measured on the same rows."
            ],
            produced_by=(f"`{command}` of {parent.ref} ({_summary(run, facts)})",),
        ),
        model_spec=NewModel(description=description, tenant=model.tenant),
    )
    say(f"registered {version.ref}")
    return OptimizedVersion(version, report, render(report, parent.ref, version.ref))


def check_parent(run: OptimizeRun, registry: Registry, actor: Actor) -> tuple[Model, ModelVersion]:
    """The parent's model and version, after checking the run's options and that the
    method applies to it; run when the job is created, and again by the job."""
    check_model_name(run.name)
    _check_run(run)
    if parse_gate(run.max_metric_drop) and run.target is None:
        raise Invalid("a gate (max_metric_drop) needs the data's labels: name the target column")
    model = registry.get_model(run.name)
    if not actor.is_admin and model.tenant != actor.tenant:
        raise Forbidden(f"model {run.name!r} belongs to another tenant")
    parent = registry.get_version(run.name, run.version)
    if parent.status == "archived":
        raise Invalid(f"{parent.ref} is archived; optimise a live version")
    signature = parent.signature
    if signature.task != "binary" or signature.classes is None:
        raise Invalid(
            f"{parent.ref} is a {signature.task} model; optimisation works on binary "
            "classification versions, whose metrics it can compare"
        )
    _check_applies(run, ModelFormat(parent.artifact_format), parent.ref)
    return model, parent


def _check_run(run: OptimizeRun) -> None:
    if run.method not in METHODS:
        raise Invalid(f"method must be one of {', '.join(METHODS)}, got {run.method!r}")
    check_int("version", run.version, 1, 2**31 - 1)
    if not 0.1 <= run.tuning_share <= 0.9:
        raise Invalid(f"tuning_share must be between 0.1 and 0.9, got {run.tuning_share!r}")
    check_int("fine_tune_epochs", run.fine_tune_epochs, 0, 10_000)
    if run.mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}, got {run.mode!r}")
    if run.structure not in STRUCTURES:
        raise Invalid(f"structure must be one of {', '.join(STRUCTURES)}, got {run.structure!r}")
    if run.student not in STUDENTS:
        raise Invalid(f"student must be one of {', '.join(STUDENTS)}, got {run.student!r}")
    check_sparsity(run.sparsity)
    if run.keep_trees is not None:
        check_int("keep_trees", run.keep_trees, 1, 1_000_000)
    check_int("trees", run.trees, 1, 10_000)
    check_int("leaves", run.leaves, 2, 1_024)
    check_int("hidden", run.hidden, 1, 4_096)
    check_int("neighbours", run.neighbours, 0, 1_000)
    check_jitter(run.jitter)
    check_min_speedup(run.min_speedup)


def _check_applies(run: OptimizeRun, fmt: ModelFormat, ref: str) -> None:
    """Refuse a method that cannot work on the parent's format, saying what would."""
    if run.method == "quantize" and fmt is not ModelFormat.ONNX:
        hint = ""
        if fmt in TREE_FORMATS:
            hint = (
                f". Convert it first (finmaas convert {ref}); a tree ensemble has no dense "
                "layer to quantise, so prune or distill it instead"
            )
        elif fmt in CONVERTIBLE:
            hint = f". Convert it first (finmaas convert {ref}), or distill it"
        raise Invalid(f"int8 and float16 quantisation need an ONNX network; {ref} is {fmt}{hint}")
    if run.method == "prune" and fmt is not ModelFormat.ONNX and fmt not in TREE_FORMATS:
        raise Invalid(
            f"pruning works on finmaas networks (ONNX) and LightGBM or XGBoost ensembles; "
            f"{ref} is {fmt}: distill it instead"
        )
    if (
        run.method == "prune"
        and fmt in TREE_FORMATS
        and run.keep_trees is None
        and run.target is None
    ):
        raise Invalid(
            "pruning trees chooses the tree count by log loss on labelled rows: "
            "name the target column, or pass keep_trees"
        )
    if run.method == "convert" and fmt not in CONVERTIBLE:
        raise Invalid(
            f"{ref} is ONNX already; nothing to convert"
            if fmt is ModelFormat.ONNX
            else f"cannot convert {ref} ({fmt}); convertible are LightGBM, XGBoost and skops"
        )


def _rows(frame: pd.DataFrame, signature: ModelSignature, run: OptimizeRun) -> _Rows:
    names = list(signature.feature_names)
    check_columns(frame, names, "signature input")
    features = frame[names]
    x = np.asarray(encode_frame(signature, features), dtype=np.float64)
    y = _labels(frame, run.target, signature) if run.target is not None else None
    rng = np.random.default_rng(run.seed)
    classes = signature.classes or ("0", "1")
    groups = (
        {f"rows of class {classes[label]!r}": np.flatnonzero(y == label) for label in (0, 1)}
        if y is not None
        else {"rows": np.arange(len(x))}
    )
    tune_parts, eval_parts = [], []
    for what, group in groups.items():
        shuffled = rng.permutation(group)
        cut = round(len(shuffled) * run.tuning_share)
        if min(cut, len(shuffled) - cut) < MIN_ROWS_PER_PART:
            raise Invalid(
                f"too few {what} ({len(shuffled)}) to tune on some and evaluate on the rest: "
                f"each part needs {MIN_ROWS_PER_PART}"
            )
        tune_parts.append(shuffled[:cut])
        eval_parts.append(shuffled[cut:])
    tune, held = np.sort(np.concatenate(tune_parts)), np.sort(np.concatenate(eval_parts))
    return _Rows(
        x_tune=x[tune],
        y_tune=y[tune] if y is not None else None,
        x_eval=x[held],
        y_eval=y[held] if y is not None else None,
        x_all=x,
        features=features,
    )


def _labels(frame: pd.DataFrame, target: str, signature: ModelSignature) -> NDArray[np.int_]:
    check_columns(frame, [target], "target")
    if target in signature.feature_names:
        raise Invalid(f"target {target!r} is one of the model's inputs")
    negative, positive = signature.classes or ("0", "1")
    labels = frame[target].astype(object).where(frame[target].notna(), None)
    text = labels.map(lambda v: None if v is None else _label_text(v))
    unknown = ~text.isin([negative, positive])
    if unknown.any():
        row = int(np.argmax(unknown.to_numpy()))
        raise Invalid(
            f"row {row}: target {target!r} must be {negative!r} or {positive!r} (the model's "
            f"classes), got {labels.iloc[row]!r}"
        )
    return (text == positive).to_numpy().astype(np.int_)


def _label_text(value: object) -> str:
    """``1.0`` read from a CSV matches the class ``"1"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _build(
    run: OptimizeRun,
    data: bytes,
    fmt: ModelFormat,
    signature: ModelSignature,
    rows: _Rows,
) -> tuple[bytes, ModelFormat, dict[str, Any]]:
    if run.method == "quantize":
        child, facts = quantize(data, rows.x_tune, run.mode)
        return child, ModelFormat.ONNX, facts
    if run.method == "prune":
        if fmt is ModelFormat.ONNX:
            child, facts = prune_network(
                data,
                rows.x_tune,
                sparsity=run.sparsity,
                structure=run.structure,
                fine_tune_epochs=run.fine_tune_epochs,
                seed=run.seed,
            )
            return child, ModelFormat.ONNX, facts
        child, facts = prune_trees(data, fmt, rows.x_tune, rows.y_tune, keep_trees=run.keep_trees)
        return child, fmt, facts
    if run.method == "distill":
        rng = np.random.default_rng(run.seed)
        training = neighbours_of(rows.x_tune, signature, run.neighbours, run.jitter, rng)
        teacher = load_predictor(data, fmt, signature)
        scores = np.asarray(teacher.predict(training), dtype=np.float64)
        child, child_fmt, facts = distill(
            training,
            scores,
            signature,
            student=run.student,
            trees=run.trees,
            leaves=run.leaves,
            hidden=run.hidden,
            seed=run.seed,
        )
        facts.update(neighbours=run.neighbours, jitter=run.jitter)
        return child, child_fmt, facts
    child, facts = convert(data, fmt, signature, rows.x_all)
    return child, ModelFormat.ONNX, facts


def _costs(parent: ModelVersion) -> CostMatrix:
    """The cost matrix the parent was trained with, else the default."""
    settings = parent.lineage.get("settings")
    costs = settings.get("costs") if isinstance(settings, Mapping) else None
    if isinstance(costs, Mapping):
        try:
            return CostMatrix(**costs)
        except (TypeError, Invalid):
            pass
    return DEFAULT_COSTS


def _summary(run: OptimizeRun, facts: Mapping[str, Any]) -> str:
    if run.method == "quantize":
        return f"{run.mode} quantisation"
    if run.method == "prune":
        if "trees_after" in facts:
            return f"{facts['trees_before']} → {facts['trees_after']} trees"
        before, after = facts["hidden_units_before"], facts["hidden_units_after"]
        return f"{run.structure} pruned to {run.sparsity:.0%} sparsity, units {before} → {after}"
    if run.method == "distill":
        return f"{run.student} student"
    return f"converted to ONNX by {facts['converter']}"
