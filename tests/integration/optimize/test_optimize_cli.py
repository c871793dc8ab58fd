"""``finmaas optimize`` and ``finmaas convert`` end to end: the job's worker builds the
child, the CLI prints the report, and bad requests fail with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb

from finmaas.actor import Actor
from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET
from finmaas.publish.registration import register
from finmaas.registry import LocalArtifactStore, Registry
from tests.optimize_models import german, lightgbm_model, network_model


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with ``net@1`` and ``trees@1`` (``trees@champion``)."""
    folder = tmp_path_factory.mktemp("optimize-cli") / "home"
    settings = Settings(home=folder)
    registry = Registry.open(settings)
    data = german()
    try:
        for name, model in (("net", network_model()), ("trees", lightgbm_model())):
            register(
                name,
                model,
                data.train[list(data.signature.feature_names)],
                signature=data.signature,
                task="binary",
                classes=data.signature.classes,
                positive_class=data.signature.positive_class,
                trained_on_encoded=True,
                registry=registry,
                store=LocalArtifactStore(settings.resolved_artifacts_dir),
                actor=Actor("local:tester"),
            )
        registry.set_alias("trees", "champion", 1, actor="local:tester")
    finally:
        registry.close()
    return folder


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "holdout.csv"
    german().held.to_csv(path, index=False)
    return path


def test_optimize_prints_the_report_and_registers_the_child(
    home: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--home", str(home), "optimize", "net@1", "--method", "quantize"]
    data = ["--data", str(holdout), "--target", GERMAN_CREDIT_TARGET]
    assert main([*args, *data, "--max-metric-drop", "auc=0.02", "--mode", "static"]) == 0
    out = capsys.readouterr().out
    assert "| | net@1 | net@2 | change |" in out
    assert "| auc | " in out
    assert "| throughput | " in out
    assert (
        "registered net@2 (quantize of net@1); no alias moved. Next: a validator other than "
        "its author approves it (finmaas models approve net 2 --note …), then promote it "
        "(finmaas models promote net 2)"
    ) in out
    assert main(["--home", str(home), "models", "card", "net", "--version", "2"]) == 0
    assert "## Compared with its parent" in capsys.readouterr().out


def test_convert_takes_an_alias(
    home: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(home), "convert", "trees@champion", "--data", str(holdout)]) == 0
    out = capsys.readouterr().out
    assert "registered trees@2 (convert of trees@1)" in out
    assert "| auc |" not in out  # no target: speed, size and fidelity only
    assert "Fidelity: 100.0% of decisions unchanged" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["optimize", "net", "--method", "prune"],
            "error: name the version as NAME@VERSION (a number or an alias), got 'net'",
        ),
        (
            ["optimize", "net@1", "--method", "convert"],
            "error: --method must be one of quantize, prune, distill, got 'convert'; to "
            "convert, run: finmaas convert",
        ),
        (
            ["optimize", "net@1", "--method", "prune", "--max-metric-drop", "auc"],
            "error: --max-metric-drop must be METRIC=DROP, e.g. auc=0.005; got 'auc'",
        ),
        (
            ["optimize", "trees@1", "--method", "quantize", "--target", GERMAN_CREDIT_TARGET],
            "error: int8 and float16 quantisation need an ONNX network; trees@1 is lightgbm. "
            "Convert it first (finmaas convert trees@1); a tree ensemble has no dense layer to "
            "quantise, so prune or distill it instead",
        ),
        (["optimize", "net@9", "--method", "prune"], "error: model 'net' has no version 9"),
    ],
)
def test_bad_requests_fail_with_one_line(
    home: Path,
    holdout: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = main(["--home", str(home), *args, "--data", str(holdout)])
    assert code == 1
    assert capsys.readouterr().err.strip() == message


def test_prune_and_distill_run_through_the_cli_and_the_gate_fails_the_job(
    home: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--home", str(home), "optimize"]
    data = ["--data", str(holdout), "--target", GERMAN_CREDIT_TARGET]
    assert main([*base, "net@1", "--method", "prune", "--fine-tune-epochs", "5", *data]) == 0
    assert "(prune of net@1)" in capsys.readouterr().out
    before = _latest(home, "trees")
    gated = ["--trees", "1", "--leaves", "2", "--max-metric-drop", "auc=0.001"]
    assert main([*base, "trees@1", "--method", "distill", *gated, *data]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: job ")
    assert " failed: gate not met: auc got worse by " in error
    assert error.endswith("no version was registered")
    assert _latest(home, "trees") == before


def _latest(home: Path, name: str) -> int:
    registry = Registry.open(Settings(home=home))
    try:
        return registry.get_model(name).latest_version
    finally:
        registry.close()


def test_convert_of_xgboost_trained_on_a_named_frame_with_categoricals(
    home: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = german()
    names = list(data.signature.feature_names)
    frame = data.train[names].copy()
    for feature in data.signature.inputs:
        if feature.dtype == "category":
            frame[feature.name] = pd.Categorical(frame[feature.name], categories=feature.categories)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, enable_categorical=True)
    model.fit(frame, data.y_train)
    settings = Settings(home=home)
    registry = Registry.open(settings)
    try:
        register(
            "xgb-frame",
            model,
            frame,
            classes=data.signature.classes,
            positive_class=data.signature.positive_class,
            registry=registry,
            store=LocalArtifactStore(settings.resolved_artifacts_dir),
            actor=Actor("local:tester"),
        )
    finally:
        registry.close()
    assert main(["--home", str(home), "convert", "xgb-frame@1", "--data", str(holdout)]) == 0
    out = capsys.readouterr().out
    assert "registered xgb-frame@2 (convert of xgb-frame@1)" in out
    assert "Fidelity: 100.0% of decisions unchanged" in out


def test_a_speed_gate_refuses_a_slower_child_and_registers_nothing(
    home: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _latest(home, "trees")
    args = ["--home", str(home), "optimize", "trees@1", "--method", "prune", "--keep-trees", "5"]
    # no child is a thousand times faster: the gate always refuses
    assert main([*args, "--data", str(holdout), "--min-speedup", "1000"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: job ")
    assert " failed: speed gate not met: the child serves " in error
    assert error.endswith(" less than the ×1000 asked (min_speedup); no version was registered")
    assert _latest(home, "trees") == before
    assert main([*args, "--data", str(holdout), "--min-speedup", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: min_speedup must be a number > 0, got 0.0"
