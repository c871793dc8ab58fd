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
    check_min_speedup,
    check_speedup,
    compare,
    cost_warning,
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


def _timed(size_bytes: int, rows_per_second: float) -> Measured:
    return Measured(size_bytes, 2.0, 20.0, 64 / rows_per_second * 1e6, rows_per_second, {})


def _sized(parent: Measured, child: Measured) -> Report:
    return Report(parent, child, Fidelity(1.0, 0.0, 0.0), 200, 0.3)


def test_a_larger_slower_child_is_named_in_the_report() -> None:
    report = _sized(_timed(100_000, 500_000.0), _timed(121_000, 400_000.0))
    warning = (
        "Warning: this child is larger (121,000 B, ×1.21 the size) and slower "
        "(400,000 rows/s at 64 rows, ×0.80 the speed) than its parent. A speed gate "
        "(--min-speedup, the job option min_speedup) refuses a slower child."
    )
    assert cost_warning(report) == warning
    assert render(report, "m@1", "m@2").endswith("\n" + warning)


def test_a_child_only_larger_or_only_slower_is_named_for_that() -> None:
    larger = _sized(_timed(100_000, 500_000.0), _timed(150_000, 600_000.0))
    assert cost_warning(larger) == (
        "Warning: this child is larger (150,000 B, ×1.50 the size) than its parent."
    )
    slower = _sized(_timed(100_000, 500_000.0), _timed(50_000, 250_000.0))
    assert cost_warning(slower) == (
        "Warning: this child is slower (250,000 rows/s at 64 rows, ×0.50 the speed) than its "
        "parent. A speed gate (--min-speedup, the job option min_speedup) refuses a slower child."
    )


def test_a_smaller_faster_child_gets_no_warning() -> None:
    report = _sized(_timed(100_000, 500_000.0), _timed(100_000, 500_000.0))
    assert cost_warning(report) is None
    assert "Warning" not in render(report, "m@1", "m@2")


def test_the_speed_gate_refuses_a_child_slower_than_asked_with_the_numbers() -> None:
    report = _sized(_timed(100_000, 500_000.0), _timed(60_000, 600_000.0))
    assert report.speedup == pytest.approx(1.2)
    check_speedup(report, None)  # no gate
    check_speedup(report, 1.2)  # exactly the minimum passes
    check_speedup(report, 0.5)
    with pytest.raises(Invalid) as caught:
        check_speedup(report, 1.5)
    assert str(caught.value) == (
        "speed gate not met: the child serves 600,000 rows/s at 64 rows, ×1.20 its parent's "
        "500,000, less than the ×1.5 asked (min_speedup); no version was registered"
    )


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "2"])
def test_a_bad_speed_gate_is_refused(value: object) -> None:
    with pytest.raises(Invalid) as caught:
        check_min_speedup(value)
    assert str(caught.value) == f"min_speedup must be a number > 0, got {value!r}"


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
