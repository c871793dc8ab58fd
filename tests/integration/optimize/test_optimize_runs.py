"""``optimize_version`` against a real registry (SQLite and PostgreSQL): each method
registers a child with its lineage and report; a failed gate and every bad request
register nothing; and the job path refuses a bad request before a job exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from finmaas.actor import Actor
from finmaas.datasets import GERMAN_CREDIT_TARGET
from finmaas.errors import Forbidden, Invalid
from finmaas.jobs.runner import JobStore, build_run
from finmaas.optimize import OptimizeRun, optimize_version
from finmaas.publish.registration import register
from finmaas.registry import LocalArtifactStore, Registry
from tests.optimize_models import german, lightgbm_model, network_model

ADMIN = Actor("local:tester")
THRESHOLD = 0.35
REASONS = {"duration_in_month": "Loan term too long"}


@pytest.fixture
def holdout(tmp_path: Path) -> Path:
    path = tmp_path / "holdout.csv"
    german().held.to_csv(path, index=False)
    return path


@pytest.fixture
def parents(registry: Registry, store: LocalArtifactStore) -> None:
    """``net@1`` (a two-layer network, ONNX) and ``trees@1`` (LightGBM, 150 trees)."""
    data = german()
    features = data.train[list(data.signature.feature_names)]
    for name, model in (("net", network_model()), ("trees", lightgbm_model())):
        register(
            name,
            model,
            features,
            signature=data.signature,
            task="binary",
            classes=data.signature.classes,
            metrics={"auc": 0.8, "threshold": THRESHOLD},
            trained_on_encoded=True,
            reason_codes=REASONS,
            registry=registry,
            store=store,
            actor=ADMIN,
        )


def _optimize(
    registry: Registry, store: LocalArtifactStore, actor: Actor = ADMIN, **fields: Any
) -> Any:
    run = OptimizeRun(**{"target": GERMAN_CREDIT_TARGET, **fields})
    return optimize_version(run, registry, store, actor=actor, max_bytes=10**8)


@pytest.mark.parametrize(
    ("parent", "method", "options", "fmt"),
    [
        ("net", "quantize", {"mode": "dynamic"}, "onnx"),
        ("net", "quantize", {"mode": "static"}, "onnx"),
        ("net", "prune", {"sparsity": 0.5, "fine_tune_epochs": 10}, "onnx"),
        ("trees", "prune", {}, "lightgbm"),
        ("trees", "distill", {"trees": 20, "neighbours": 5}, "lightgbm"),
        ("trees", "distill", {"student": "network", "neighbours": 5}, "onnx"),
        ("trees", "convert", {}, "onnx"),
    ],
)
@pytest.mark.usefixtures("parents")
def test_each_method_registers_a_child_with_its_lineage_and_report(
    registry: Registry,
    store: LocalArtifactStore,
    holdout: Path,
    parent: str,
    method: str,
    options: dict[str, Any],
    fmt: str,
) -> None:
    result = _optimize(
        registry,
        store,
        name=parent,
        version=1,
        method=method,
        data=holdout,
        max_metric_drop={"auc": 0.05},
        **options,
    )
    child = registry.get_version(parent, 2)
    assert result.version.ref == child.ref == f"{parent}@2"
    assert child.parent_version == 1
    assert child.artifact_format == fmt
    assert child.params["method"] == method
    assert child.tags == {"optimized_from": f"{parent}@1", "method": method}
    # the decision rule and the reason texts carry over
    assert child.params["decision_threshold"] == child.metrics["threshold"] == THRESHOLD
    assert child.explanation is not None
    assert child.explanation["reason_texts"]["duration_in_month"] == REASONS["duration_in_month"]
    assert child.reference_profile is not None
    lineage = child.lineage
    assert lineage["parent"] == f"{parent}@1"
    assert lineage["method"] == method
    assert lineage["parameters"]["seed"] == 42
    assert lineage["gate"] == {"auc": 0.05}
    assert lineage["data_rows"] == len(german().held)
    assert lineage["tuning_rows"] + lineage["evaluation_rows"] == len(german().held)
    report = lineage["report"]
    assert report["child"]["metrics"]["auc"] == child.metrics["auc"]
    assert report["parent"]["size_bytes"] == registry.get_version(parent, 1).artifact_size
    assert report["child"]["size_bytes"] == child.artifact_size
    assert "## Compared with its parent" in child.model_card
    command = "finmaas convert" if method == "convert" else f"finmaas optimize --method {method}"
    assert f"`{command}` of {parent}@1 (" in child.model_card
    assert f"| | parent ({parent}@1) | this version | change |" in child.model_card
    assert result.markdown.startswith(f"| | {parent}@1 | {parent}@2 | change |")
    assert registry.get_model(parent).latest_version == 2
    assert [a.name for a in registry.list_aliases(parent)] == []  # no alias moved


@pytest.mark.usefixtures("parents")
def test_a_child_that_fails_the_gate_is_not_registered(
    registry: Registry, store: LocalArtifactStore, holdout: Path
) -> None:
    files = sorted(store.root.rglob("*"))
    with pytest.raises(Invalid) as caught:
        _optimize(
            registry,
            store,
            name="trees",
            version=1,
            method="distill",
            data=holdout,
            trees=1,
            leaves=2,
            neighbours=0,
            max_metric_drop={"auc": 0.001},
        )
    assert str(caught.value).startswith("gate not met: auc got worse by ")
    assert str(caught.value).endswith(
        f"on {len(german().held) // 2} held-out rows, more than the 0.001 allowed; "
        "no version was registered"
    )
    assert registry.get_model("trees").latest_version == 1
    assert sorted(store.root.rglob("*")) == files  # no artifact left behind


def _short(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "short.csv"
    german().held.groupby(GERMAN_CREDIT_TARGET).head(rows).to_csv(path, index=False)
    return path


def _relabelled(tmp_path: Path) -> Path:
    path = tmp_path / "relabelled.csv"
    frame = german().held.copy()
    frame.loc[3, GERMAN_CREDIT_TARGET] = "maybe"
    frame.to_csv(path, index=False)
    return path


def _without_column(tmp_path: Path) -> Path:
    path = tmp_path / "narrow.csv"
    german().held.drop(columns=["duration_in_month"]).to_csv(path, index=False)
    return path


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    (
        {"name": "trees", "method": "quantize"},
        "int8 and float16 quantisation need an ONNX network; trees@1 is lightgbm. Convert it "
        "first (finmaas convert trees@1); a tree ensemble has no dense layer to quantise, so "
        "prune or distill it instead",
    ),
    ({"name": "net", "method": "convert"}, "net@1 is ONNX already; nothing to convert"),
    (
        {"name": "trees", "method": "prune", "target": None},
        "pruning trees chooses the tree count by log loss on labelled rows: name the target "
        "column, or pass keep_trees",
    ),
    (
        {"name": "net", "method": "quantize", "target": None, "max_metric_drop": {"auc": 0.01}},
        "a gate (max_metric_drop) needs the data's labels: name the target column",
    ),
    (
        {"name": "net", "method": "compress"},
        "method must be one of quantize, prune, distill, convert, got 'compress'",
    ),
    (
        {"name": "net", "method": "quantize", "tuning_share": 0.95},
        "tuning_share must be between 0.1 and 0.9, got 0.95",
    ),
    (
        {"name": "net", "method": "quantize", "max_metric_drop": {"auc": -1}},
        "the allowed drop of 'auc' must be a number ≥ 0, got -1",
    ),
    (
        {"name": "net", "method": "prune", "sparsity": 1.5},
        "sparsity must be between 0 and 1 (exclusive), got 1.5",
    ),
    (
        {"name": "trees", "method": "distill", "neighbours": 5000},
        "neighbours must be an integer from 0 to 1000, got 5000",
    ),
    (
        {"name": "trees", "method": "distill", "jitter": -0.1},
        "jitter must be between 0 and 1, got -0.1",
    ),
    (
        {"name": "net", "method": "quantize", "data": "relabelled"},
        "row 3: target 'creditability' must be 'good' or 'bad' (the model's classes), got 'maybe'",
    ),
    (
        {"name": "net", "method": "quantize", "data": "short"},
        "too few rows of class 'good' (15) to tune on some and evaluate on the rest: each "
        "part needs 10",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_REQUESTS)
@pytest.mark.usefixtures("parents")
def test_bad_requests_are_refused_and_register_nothing(
    registry: Registry,
    store: LocalArtifactStore,
    holdout: Path,
    tmp_path: Path,
    changes: dict[str, Any],
    message: str,
) -> None:
    files = {"relabelled": _relabelled(tmp_path), "short": _short(tmp_path, 15)}
    fields = {"version": 1, "data": holdout, **changes}
    if isinstance(fields["data"], str):
        fields["data"] = files[fields["data"]]
    with pytest.raises(Invalid) as caught:
        _optimize(registry, store, **fields)
    assert str(caught.value) == message
    assert registry.get_model("net").latest_version == 1
    assert registry.get_model("trees").latest_version == 1


@pytest.mark.usefixtures("parents")
def test_archived_versions_other_tenants_and_missing_inputs_are_refused(
    registry: Registry, store: LocalArtifactStore, holdout: Path, tmp_path: Path
) -> None:
    registry.archive_version("trees", 1, actor=ADMIN)
    with pytest.raises(Invalid) as caught:
        _optimize(registry, store, name="trees", version=1, method="distill", data=holdout)
    assert str(caught.value) == "trees@1 is archived; optimise a live version"
    outsider = Actor("key:k1", role="developer", tenant="markets")
    with pytest.raises(Forbidden) as refused:
        _optimize(registry, store, outsider, name="net", version=1, method="quantize", data=holdout)
    assert str(refused.value) == "model 'net' belongs to another tenant"
    with pytest.raises(Invalid) as narrow:
        _optimize(
            registry,
            store,
            name="net",
            version=1,
            method="quantize",
            data=_without_column(tmp_path),
        )
    assert str(narrow.value).startswith(
        "data has no signature input column 'duration_in_month' (columns: "
    )
    assert registry.get_model("net").latest_version == 1


@pytest.mark.usefixtures("parents")
def test_an_optimize_job_is_refused_before_it_exists(registry: Registry, holdout: Path) -> None:
    jobs = JobStore(registry)
    options = {"name": "trees", "version": 1, "method": "quantize", "data": str(holdout)}
    with pytest.raises(Invalid, match=r"^int8 and float16 quantisation need an ONNX network"):
        jobs.create("optimize", options, ADMIN)
    assert jobs.recent() == []
    with pytest.raises(Invalid) as caught:
        build_run("optimize", {**options, "max_metric_drop": 0.01})
    assert str(caught.value) == "option 'max_metric_drop' must be an object"
    run = build_run("optimize", {**options, "method": "distill", "max_metric_drop": {"auc": 0}})
    assert run == OptimizeRun(
        name="trees", version=1, method="distill", data=holdout, max_metric_drop={"auc": 0.0}
    )
    job = jobs.create("optimize", {**options, "method": "distill"}, ADMIN)
    assert (job.template, job.state) == ("optimize", "queued")


def test_labels_read_as_numbers_match_numeric_classes(tmp_path: Path) -> None:
    from finmaas.optimize.runs import _labels

    frame = pd.DataFrame({"x": [1, 2, 3], "default": [0.0, 1.0, 0.0]})
    signature = german().signature.model_copy(update={"classes": ("0", "1"), "positive_class": "1"})
    assert _labels(frame, "default", signature).tolist() == [0, 1, 0]
