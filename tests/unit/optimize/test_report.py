"""The comparison report: metrics at a fixed threshold, drops by the metric's
direction, the gate and its messages, and the Markdown table."""

from __future__ import annotations

import numpy as np
import pytest

from finmaas.errors import Invalid
from finmaas.optimize.report import (
    METRICS,
    Artifact,
    Fidelity,
    Measured,
    Report,
    check_gate,
    compare,
    held_out_metrics,
    parse_gate,
    render,
)
from finmaas.runtimes import ModelFormat
from finmaas.training.metrics import DEFAULT_COSTS
from tests.optimize_models import german, lightgbm_model


def _measured(**metrics: float) -> Measured:
    return Measured(1000, 2.0, 20.0, 100.0, 640_000.0, metrics)


def _report(parent: dict[str, float], child: dict[str, float]) -> Report:
    return Report(_measured(**parent), _measured(**child), Fidelity(0.99, 0.01, 0.1), 200, 0.3)


def test_held_out_metrics_decide_at_the_given_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    metrics = held_out_metrics(y, p, 0.5, DEFAULT_COSTS)
    assert set(metrics) == set(METRICS)
    assert metrics["auc"] == 0.75
    assert metrics["gini"] == 0.5
    assert metrics["accuracy"] == 0.5  # rows 1 and 2 are on the wrong side of 0.5
    assert metrics["expected_cost"] == (5.0 + 1.0) / 4  # one bad accepted, one good rejected


def test_drops_follow_each_metrics_direction_and_the_gate_names_the_loss() -> None:
    report = _report({"auc": 0.80, "brier": 0.17}, {"auc": 0.79, "brier": 0.16})
    assert report.drops() == pytest.approx({"auc": 0.01, "brier": -0.01})
    check_gate(report, {"brier": 0.0, "auc": 0.01})  # a better Brier and an allowed AUC loss
    with pytest.raises(Invalid) as caught:
        check_gate(report, {"auc": 0.005})
    assert str(caught.value) == (
        "gate not met: auc got worse by 0.0100 (0.8000 → 0.7900) on 200 held-out rows, more "
        "than the 0.005 allowed; no version was registered"
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"auroc": 0.01},
            "cannot gate on 'auroc': the report measures auc, ks, gini, accuracy, brier, "
            "log_loss, expected_cost",
        ),
        ({"auc": -0.01}, "the allowed drop of 'auc' must be a number ≥ 0, got -0.01"),
        ({"auc": True}, "the allowed drop of 'auc' must be a number ≥ 0, got True"),
        ({"auc": float("nan")}, "the allowed drop of 'auc' must be a number ≥ 0, got nan"),
        ({"auc": "0.1"}, "the allowed drop of 'auc' must be a number ≥ 0, got '0.1'"),
    ],
)
def test_bad_gates_are_refused(limits: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_gate(limits)
    assert str(caught.value) == message


def test_compare_measures_both_sides_on_the_same_rows() -> None:
    data = german()
    booster = lightgbm_model()
    parent = Artifact(booster.model_to_string().encode(), ModelFormat.LIGHTGBM)
    child = Artifact(booster.model_to_string(num_iteration=20).encode(), ModelFormat.LIGHTGBM)
    report = compare(
        parent,
        child,
        data.signature,
        data.x_held,
        data.y_held,
        threshold=0.3,
        costs=DEFAULT_COSTS,
    )
    assert report.rows == len(data.y_held)
    assert report.child.size_bytes < report.parent.size_bytes
    expected = held_out_metrics(
        data.y_held, booster.predict(data.x_held, num_iteration=20), 0.3, DEFAULT_COSTS
    )
    assert report.child.metrics == pytest.approx(expected)
    for side in (report.parent, report.child):
        assert side.load_ms > 0
        assert side.single_row_us > 0
        assert side.batch_us > 0
        assert side.rows_per_second == pytest.approx(64 / (side.batch_us * 1e-6))
    assert 0.0 < report.fidelity.agreement < 1.0
    unlabelled = compare(
        parent, child, data.signature, data.x_held, None, threshold=0.3, costs=DEFAULT_COSTS
    )
    assert unlabelled.parent.metrics == {}
    assert unlabelled.deltas() == {}
    table = render(report, "m@1", "m@2")
    assert table.startswith("| | m@1 | m@2 | change |\n|---|---|---|---|\n| artifact size |")
    assert f"| auc | {report.parent.metrics['auc']:.4f} |" in table
    assert f"Held-out rows: {len(data.y_held)}; decisions at threshold 0.3000." in table
