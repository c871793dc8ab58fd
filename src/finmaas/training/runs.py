"""A training run: from a data file to registered, documented versions.

:func:`train_credit` is what ``finmaas train credit`` runs. It checks the file
before any training (:mod:`finmaas.training.data`), cross-validates every
candidate on the same folds, measures fairness on the out-of-fold scores when
protected columns are named, and only then registers every candidate as a new
version with its metrics, lineage and model card. The best by the chosen metric
gets the ``staging`` alias. Nothing is registered when any step before fails,
so a failed run leaves no version behind.

Lineage makes a run reproducible: the data's sha256, the seed, the template
and its settings, the folds, and the versions of the libraries that trained it.
"""

from __future__ import annotations

import hashlib
import math
import platform
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import orjson
import pandas as pd

from finmaas.actor import Actor
from finmaas.errors import Invalid
from finmaas.publish.model_cards import CardContext, DataFacts
from finmaas.publish.registration import register
from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.registry.names import check_model_name
from finmaas.schema import ModelSignature, encode_frame, infer_signature
from finmaas.training.credit import (
    CANDIDATES,
    CandidateKind,
    CandidateResult,
    train_credit_candidates,
)
from finmaas.training.data import (
    Table,
    check_binary_target,
    check_columns,
    check_numeric_columns,
    read_table,
)
from finmaas.training.fairness import fairness_report
from finmaas.training.metrics import DEFAULT_COSTS, CostMatrix, check_int
from finmaas.training.neural import NetworkSettings

SelectionMetric = Literal["auc", "ks", "gini", "brier", "log_loss", "expected_cost"]
HIGHER_IS_BETTER = frozenset({"auc", "ks", "gini"})
STAGING = "staging"
PROTECTED_BANDS = 4
"""A numeric protected column with more than 10 values is cut into this many bands
of equal size (quartiles), so each group is large enough to judge."""
LIBRARIES = ("finmaas", "numpy", "pandas", "scikit-learn", "lightgbm", "onnx", "onnxruntime")


@dataclass(frozen=True)
class CreditRun:
    """What ``finmaas train credit`` was asked for."""

    data: Path
    target: str
    name: str
    positive: str | None = None
    """The adverse class (its probability is served); see :func:`check_binary_target`."""
    signature: ModelSignature | None = None
    """Declared inputs; None infers them from the data's other columns."""
    pii: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    """Columns not to train on (ids, dates)."""
    protected: tuple[str, ...] = ()
    folds: int = 5
    repeats: int = 2
    seed: int = 42
    select: SelectionMetric = "auc"
    costs: CostMatrix = DEFAULT_COSTS
    candidates: tuple[CandidateKind, ...] = CANDIDATES
    network: NetworkSettings = field(default_factory=NetworkSettings)
    description: str = ""

    def settings(self) -> dict[str, Any]:
        """The run's settings, JSON-ready, for lineage."""
        return {
            "target": self.target,
            "positive": self.positive,
            "pii": list(self.pii),
            "drop": list(self.drop),
            "protected": list(self.protected),
            "folds": self.folds,
            "repeats": self.repeats,
            "seed": self.seed,
            "select": self.select,
            "costs": {"accept_bad": self.costs.accept_bad, "reject_good": self.costs.reject_good},
            "candidates": list(self.candidates),
            "network": asdict(self.network),
            "declared_signature": self.signature is not None,
        }


@dataclass(frozen=True)
class TrainedVersion:
    candidate: str
    version: ModelVersion
    selected: bool
    flagged: tuple[str, ...] = ()
    """Groups with adverse impact, as ``column = group`` (none when fairness was not
    assessed: no protected column was named)."""


def train_credit(
    run: CreditRun,
    registry: Registry,
    store: ArtifactStore,
    *,
    actor: Actor,
    max_bytes: int,
    progress: Callable[[str], None] | None = None,
) -> list[TrainedVersion]:
    """Check, train, assess and register; see the module."""
    say = progress or (lambda _: None)
    check_model_name(run.name)
    check_int("folds", run.folds, 2, 20)
    check_int("repeats", run.repeats, 1, 10)
    if run.select not in get_args(SelectionMetric):
        raise Invalid(f"cannot select by {run.select!r}")
    say(f"reading {run.data.name}")
    table = read_table(run.data, max_bytes=max_bytes)
    frame = table.frame
    check_columns(frame, [*run.pii, *run.drop, *run.protected], "named")
    if run.target in (*run.drop, *run.protected):
        raise Invalid(f"target {run.target!r} cannot also be dropped or protected")
    negative, positive = check_binary_target(frame, run.target, run.positive, run.folds)
    features = frame.drop(columns=[run.target, *run.drop])
    check_numeric_columns(features, list(features.columns))
    signature = _signature(run, features, negative, positive)
    features = features[list(signature.feature_names)]
    encode_frame(signature, features)  # a value the signature refuses names its row now
    labelled = features.assign(**{run.target: frame[run.target].astype(str)})
    say(f"{len(frame):,} rows, {len(signature.inputs)} inputs, adverse class {positive!r}")

    candidates = train_credit_candidates(
        labelled,
        signature,
        run.target,
        folds=run.folds,
        repeats=run.repeats,
        seed=run.seed,
        costs=run.costs,
        candidates=run.candidates,
        network=run.network,
        progress=say,
    )
    y = (labelled[run.target] == positive).to_numpy().astype(int)
    best = _best(candidates, run.select)
    run_id = new_run_id()
    facts = DataFacts(
        name=table.name,
        sha256=table.sha256,
        rows=len(frame),
        target=run.target,
        positive=positive,
        positive_rate=float(y.mean()),
    )
    lineage = run_lineage(
        "finmaas train credit",
        run_id,
        table,
        run.seed,
        run.settings(),
        cv=candidates[0].params["cv"],
    )
    assessed = []
    for candidate in candidates:
        say(f"{candidate.name}: fairness")
        fairness = [
            fairness_report(
                column,
                _groups(frame[column]),
                y,
                candidate.oof_probabilities,
                candidate.cv_metrics["threshold"],
                seed=run.seed,
            ).to_json()
            for column in run.protected
        ]
        assessed.append((candidate, fairness))
    out = []
    for candidate, fairness in assessed:
        say(f"registering {candidate.name}")
        selected = candidate is best
        version = register(
            run.name,
            candidate.model,
            features,
            signature=signature,
            task="binary",
            classes=signature.classes,
            metrics=candidate.cv_metrics,
            params=candidate.params,
            tags={"training_run": run_id, "candidate": candidate.name},
            lineage={**lineage, "template": f"credit/{candidate.kind}"},
            trained_on_encoded=True,
            description=run.description or f"Probability of {positive!r} for {run.target!r}.",
            card_context=CardContext(
                data=facts,
                fairness=fairness,
                selection=_selection_note(candidates, candidate, run.select, selected),
                limitations=_limitations(candidate, fairness),
                produced_by=(
                    f"`finmaas train credit` run `{run_id}`, template `credit/{candidate.kind}`",
                    f"{candidate.params['cv']} cross-validation, seed {run.seed}",
                ),
            ),
            registry=registry,
            store=store,
            actor=actor,
        )
        out.append(TrainedVersion(candidate.name, version, selected, _flagged(fairness)))
    chosen = next(v for v in out if v.selected)
    registry.set_alias(run.name, STAGING, chosen.version.version, actor=actor)
    say(f"{STAGING} → {run.name} version {chosen.version.version} ({chosen.candidate})")
    return out


def stage(
    registry: Registry,
    version: ModelVersion,
    staged: bool,
    *,
    actor: Actor,
    say: Callable[[str], None],
    why_not: str,
) -> None:
    """Give a run's version the ``staging`` alias when ``staged``, and say which."""
    if staged:
        registry.set_alias(version.model, STAGING, version.version, actor=actor)
        say(f"{STAGING} → {version.model} version {version.version}")
    else:
        say(f"{version.model} version {version.version} registered, not staged: {why_not}")


def run_lineage(
    command: str,
    run_id: str,
    table: Table,
    seed: int | None,
    settings: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """What makes a run reproducible: the data, the seed, the settings (and their
    sha256) and the library versions."""
    return {
        "produced_by": command,
        "run": run_id,
        "data": table.name,
        "data_format": table.file_format,
        "data_sha256": table.sha256,
        "data_rows": len(table.frame),
        "seed": seed,
        **extra,
        "settings": dict(settings),
        "settings_sha256": hashlib.sha256(
            orjson.dumps(dict(settings), option=orjson.OPT_SORT_KEYS)
        ).hexdigest(),
        "libraries": library_versions(),
    }


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def library_versions() -> dict[str, str]:
    """Python and the libraries a training run depends on, by installed version."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _signature(
    run: CreditRun, features: pd.DataFrame, negative: str, positive: str
) -> ModelSignature:
    if run.signature is None:
        return infer_signature(
            features,
            task="binary",
            classes=(negative, positive),
            positive_class=positive,
            pii=run.pii,
        )
    declared = run.signature
    if declared.task != "binary" or declared.classes is None:
        raise Invalid(f"the signature must be binary for credit training, not {declared.task!r}")
    if tuple(declared.classes) != (negative, positive):
        raise Invalid(
            f"the signature's classes {list(declared.classes)!r} must be the target's "
            f"{[negative, positive]!r}, the adverse class last"
        )
    check_columns(features, list(declared.feature_names), "signature input")
    return declared


def _best(candidates: list[CandidateResult], select: str) -> CandidateResult:
    sign = -1.0 if select in HIGHER_IS_BETTER else 1.0
    return min(candidates, key=lambda c: sign * c.cv_metrics[select])


def _selection_note(
    candidates: list[CandidateResult], candidate: CandidateResult, select: str, selected: bool
) -> str:
    ranking = ", ".join(f"{c.name} {c.cv_metrics[select]:.4f}" for c in candidates)
    verdict = "selected, so it was given the `staging` alias" if selected else "not selected"
    return f"Selected by mean CV {select} among the run's candidates ({ranking}): {verdict}."


def _adverse(fairness: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The groups with adverse impact, as ``(column, group)``."""
    return [
        (report["protected"], group["group"])
        for report in fairness
        for group in report["groups"]
        if group["verdict"] == "adverse impact"
    ]


def _flagged(fairness: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{column} = {group}" for column, group in _adverse(fairness))


def _limitations(candidate: CandidateResult, fairness: Sequence[Mapping[str, Any]]) -> list[str]:
    limits = [
        "Cross-validated on one data set; no out-of-time sample was held back, so the "
        "metrics may flatter it on later applicants.",
    ]
    flagged = [f"`{column}` = {group}" for column, group in _adverse(fairness)]
    if flagged:
        limits.append(
            "Adverse impact (approval ratio below four fifths) for "
            + ", ".join(flagged)
            + ": review before any use in decisions."
        )
    if candidate.kind == "scorecard":
        limits.append("One-hot scorecard: categories rare in the data get unstable coefficients.")
    if candidate.kind == "network":
        limits.append("Neural network: its contributions are sampled, not exact.")
    return limits


def _groups(column: pd.Series) -> np.ndarray:
    """A protected column's groups: its values, or bands of a many-valued number
    (labelled as people read them, ``19–27``: :func:`band_label`)."""
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > 10:
        bands = pd.qcut(column, PROTECTED_BANDS, duplicates="drop")
        present = column.dropna()
        whole = bool((present == np.floor(present)).all())
        lowest = float(present.min())
        names = {
            interval: band_label(interval, whole=whole, lowest=lowest)
            for interval in bands.cat.categories
        }
        return np.array([None if pd.isna(band) else names[band] for band in bands], dtype=object)
    return np.asarray(column.astype(object).where(column.notna(), None), dtype=object)


def band_label(interval: pd.Interval, *, whole: bool, lowest: float) -> str:
    """A band of ``pd.qcut`` (right-closed, the first one's left edge nudged below the
    minimum) as a reader writes it: ``19–27`` for whole numbers (``(27, 33]`` holds
    28 to 33), else ``27.5–33.1`` from the left edge (the column's minimum for the
    first band) to the right."""
    left, right = float(interval.left), float(interval.right)
    if whole:
        low = max(math.floor(left) + 1, math.ceil(lowest))
        high = math.floor(right)
        return f"{low}" if low == high else f"{low}–{high}"
    return f"{max(left, lowest):g}–{right:g}"
