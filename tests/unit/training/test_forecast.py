"""Walk-forward forecasting: no look-ahead, the baselines, and the inputs it refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finmaas.datasets import load_goog
from finmaas.errors import Invalid
from finmaas.training.forecast import (
    _paired_z,
    check_prices,
    evaluate_forecast,
    lagged_features,
    walk_forward_predictions,
    walk_forward_splits,
)


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    return check_prices(load_goog())


def _prices(rows: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, rows)))
    return pd.DataFrame(
        {
            "Date": pd.bdate_range("2020-01-01", periods=rows),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": rng.integers(1_000, 2_000, rows),
        }
    )


def test_features_use_only_the_past() -> None:
    prices = check_prices(_prices())
    features, future = lagged_features(prices)
    t = 150
    changed = prices.copy()
    changed.loc[t + 1 :, ["Open", "High", "Low", "Close"]] *= 3.0
    changed.loc[t + 1 :, "Volume"] = 10
    again, future_again = lagged_features(changed)
    day = prices["Date"].iloc[t]
    pd.testing.assert_frame_equal(features.loc[:day], again.loc[:day])
    # the target of day t is the return to day t+1, so it changes; the ones before do not
    pd.testing.assert_series_equal(
        future.loc[: prices["Date"].iloc[t - 1]], future_again.loc[: prices["Date"].iloc[t - 1]]
    )
    assert future.loc[day] != future_again.loc[day]


@pytest.mark.parametrize("target", ["return", "direction"])
@pytest.mark.parametrize("t", [225, 240])  # the first row of a test block, and one inside it
def test_a_prediction_does_not_change_when_later_prices_do(target: str, t: int) -> None:
    prices = check_prices(_prices(400))
    features, future = lagged_features(prices)
    predicted = walk_forward_predictions(features, future, target, 100, 25)  # type: ignore[arg-type]
    day = features.index[t]
    changed = prices.copy()
    later = changed["Date"] > day
    changed.loc[later, ["Open", "High", "Low", "Close"]] *= 0.5
    again_features, again_future = lagged_features(changed)
    again = walk_forward_predictions(again_features, again_future, target, 100, 25)  # type: ignore[arg-type]
    np.testing.assert_array_equal(predicted[: t + 1], again[: t + 1])
    assert not np.array_equal(predicted[t + 1 :], again[t + 1 :])


def test_walk_forward_windows_grow_and_test_what_follows() -> None:
    splits = walk_forward_splits(130, 100, 12)
    assert [(train.stop, test.start, test.stop) for train, test in splits] == [
        (100, 100, 112),
        (112, 112, 124),
        (124, 124, 130),
    ]
    assert all(train.start == 0 for train, _ in splits)


def test_goog_direction_is_reported_beside_its_baselines(goog: pd.DataFrame) -> None:
    report = evaluate_forecast(goog, "direction")
    assert report.rows == len(goog) - 21  # 20 rows of warm-up, and the last has no next day
    assert report.test_rows == report.rows - 500
    assert report.folds == 82
    assert report.first_test_date > "2006-01-01"
    assert report.last_test_date == "2013-02-28"
    assert set(report.baselines) == {"last_value", "majority"}
    for figures in (report.model, *report.baselines.values()):
        assert 0.4 < figures["directional_accuracy"] < 0.6  # daily direction is close to a coin


def test_goog_return_is_reported_beside_its_baselines(goog: pd.DataFrame) -> None:
    report = evaluate_forecast(goog, "return", lags=3, initial=250, step=50)
    assert set(report.baselines) == {"last_value", "zero"}
    assert set(report.model) == {"mae", "rmse", "directional_accuracy"}
    zero = report.baselines["zero"]
    assert 0 < zero["mae"] < zero["rmse"]
    assert report.to_json()["model"] == report.model
    assert set(report.edge_z) == {"last_value", "zero"}


def test_the_edge_z_score_is_paired_and_flags_real_skill() -> None:
    # A series whose next return is the sign of a feature: direction is learnable.
    rng = np.random.default_rng(0)
    days = 900
    returns = rng.normal(0, 0.01, days)
    for t in range(1, days):  # momentum: tomorrow mostly moves the way today did
        returns[t] += 0.02 * np.sign(returns[t - 1])
    close = 100 * np.cumprod(1 + returns)
    prices = pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=days, freq="D"),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": rng.integers(1_000, 2_000, days).astype(float),
        }
    )
    report = evaluate_forecast(prices, "direction", initial=200, step=50)
    assert report.model["directional_accuracy"] > 0.8
    assert report.edge_z["majority"] > 10
    # Today's direction is the signal, so the last value already has it: no proven edge.
    assert report.edge_z["last_value"] < 2
    assert _paired_z(np.zeros(10)) == 0.0
    edge = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    assert _paired_z(edge) == pytest.approx(edge.mean() / (edge.std(ddof=1) / np.sqrt(6)))


def _frame(**changes: list[object]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "Date": ["2020-01-01", "2020-01-02", "2020-01-03"],
            "Open": [1.0, 2.0, 3.0],
            "High": [1.0, 2.0, 3.0],
            "Low": [1.0, 2.0, 3.0],
            "Close": [1.0, 2.0, 3.0],
            "Volume": [10, 20, 30],
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame().drop(columns=["Volume"]), "price data lacks column(s) 'Volume'"),
        (
            _frame(Date=["2020-01-01", "2020-01-02", "2020-01-02"]),
            "dates must be unique, 2020-01-02 appears more than once",
        ),
        (
            _frame(Date=["2020-01-01", "2020-01-03", "2020-01-02"]),
            "dates must be in increasing order, 2020-01-02 comes after 2020-01-03 (row 3)",
        ),
        (
            _frame(Date=["2020-01-01", "soon", "2020-01-03"]),
            "column 'Date' must hold dates, got 'soon' at row 2",
        ),
        (_frame(Close=[1.0, "n/a", 3.0]), "column 'Close' must be numeric, got 'n/a' at row 2"),
        (_frame(Close=[1.0, 0.0, 3.0]), "column 'Close' must be positive"),
    ],
)
def test_bad_prices_are_refused_before_any_training(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_prices(frame)
    assert str(raised.value) == message


def test_bad_settings_are_refused(goog: pd.DataFrame) -> None:
    cases = [
        ({"target": "price"}, "target must be one of return, direction, got 'price'"),
        ({"lags": 0}, "lags must be an integer from 1 to 20, got 0"),
        ({"step": 0}, "step must be an integer from 1 to 1000000, got 0"),
        (
            {"initial": 2500},
            "too few rows for walk-forward validation: 2127 usable row(s), "
            "need initial (2500) + step (20) = 2520",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(Invalid) as raised:
            evaluate_forecast(goog, **kwargs)  # type: ignore[arg-type]
        assert str(raised.value) == message
