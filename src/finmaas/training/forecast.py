"""Market forecasting: next-period return or direction from lagged OHLCV features,
evaluated walk-forward (no look-ahead), beside naive baselines.

Row ``t``'s features use only what is known at ``t``'s close:

* ``return_k`` for ``k < lags``: ``close[t-k] / close[t-k-1] - 1``;
* ``volatility_5``, ``volatility_20``: standard deviation of the last 5 and 20
  daily returns;
* ``range``: ``(high[t] - low[t]) / close[t]``;
* ``volume_change``: ``volume[t]`` over the mean of the last 20 volumes, minus 1.

The target is the next period's return, ``close[t+1] / close[t] - 1``
(``return``), or whether it is positive (``direction``). Rows without a full
history or without a next period are left out.

**Walk-forward.** The first ``initial`` rows train a model that predicts the
next ``step`` rows; the window then grows by ``step`` and a new model is fitted,
until the data ends. The model that predicts row ``t`` was fitted on rows whose
targets were all known at ``t``'s close, so changing any price after ``t``
cannot change the prediction for ``t`` (tested).

**Baselines,** so nobody mistakes noise for skill: *last value* (tomorrow's
return is today's; for direction, today's direction), and *zero* (no change,
for return) or *majority* (the more frequent direction in the training window,
for direction).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from finmaas.errors import Invalid
from finmaas.training.metrics import check_int

Target = Literal["return", "direction"]
TARGETS: tuple[Target, ...] = ("return", "direction")
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
WARM_UP = 20
"""Rows of history the longest feature needs."""


@dataclass(frozen=True)
class ForecastReport:
    target: Target
    rows: int
    """Rows with features and a target."""
    folds: int
    test_rows: int
    first_test_date: str
    last_test_date: str
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    edge_z: dict[str, float]
    """Per baseline, the paired z-score of the model's edge on the headline metric
    (directional accuracy, or absolute error for returns): the mean per-period
    difference over its standard error. Above 2, the edge is unlikely to be noise."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_prices(frame: pd.DataFrame, date_column: str = "Date") -> pd.DataFrame:
    """Validated prices: the date and the OHLCV columns, numeric, dates unique and
    increasing, closes positive. Raises :class:`Invalid` naming the problem."""
    missing = [c for c in (date_column, *PRICE_COLUMNS) if c not in frame.columns]
    if missing:
        raise Invalid(f"price data lacks column(s) {', '.join(map(repr, missing))}")
    out = pd.DataFrame({"Date": pd.to_datetime(frame[date_column], errors="coerce")})
    bad_date = out["Date"].isna()
    if bad_date.any():
        row = int(np.argmax(bad_date.to_numpy()))
        raise Invalid(
            f"column {date_column!r} must hold dates, got {frame[date_column].iloc[row]!r} "
            f"at row {row + 1}"
        )
    for column in PRICE_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        wrong = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if wrong.any():
            row = int(np.argmax(wrong.to_numpy()))
            shown = frame[column].iloc[row]
            raise Invalid(f"column {column!r} must be numeric, got {shown!r} at row {row + 1}")
        out[column] = values.astype(np.float64)
    dates = out["Date"]
    duplicated = dates.duplicated()
    if duplicated.any():
        day = dates[duplicated].iloc[0]
        raise Invalid(f"dates must be unique, {day.date().isoformat()} appears more than once")
    backwards = dates.diff() < pd.Timedelta(0)
    if backwards.any():
        row = int(np.argmax(backwards.to_numpy()))
        raise Invalid(
            f"dates must be in increasing order, {dates.iloc[row].date().isoformat()} comes "
            f"after {dates.iloc[row - 1].date().isoformat()} (row {row + 1})"
        )
    if (out["Close"] <= 0).any():
        raise Invalid("column 'Close' must be positive")
    return out.reset_index(drop=True)


def lagged_features(prices: pd.DataFrame, lags: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    """Features and next-period return of every row that has both (index: the date)."""
    check_int("lags", lags, 1, WARM_UP)
    close = prices["Close"]
    returns = close / close.shift(1) - 1.0
    features = pd.DataFrame(index=prices["Date"])
    for k in range(lags):
        features[f"return_{k}"] = returns.shift(k).to_numpy()
    features["volatility_5"] = returns.rolling(5).std().to_numpy()
    features["volatility_20"] = returns.rolling(20).std().to_numpy()
    features["range"] = ((prices["High"] - prices["Low"]) / close).to_numpy()
    volume = prices["Volume"]
    features["volume_change"] = (volume / volume.rolling(20).mean() - 1.0).to_numpy()
    future = pd.Series((close.shift(-1) / close - 1.0).to_numpy(), index=features.index)
    keep = features.notna().all(axis=1).to_numpy() & future.notna().to_numpy()
    features = features.replace([np.inf, -np.inf], 0.0)
    return features[keep], future[keep]


def walk_forward_splits(rows: int, initial: int, step: int) -> list[tuple[range, range]]:
    """(train, test) row ranges: train ``[0, end)``, test ``[end, end + step)``."""
    check_int("initial", initial, 20, 1_000_000)
    check_int("step", step, 1, 1_000_000)
    if rows < initial + step:
        raise Invalid(
            f"too few rows for walk-forward validation: {rows} usable row(s), "
            f"need initial ({initial}) + step ({step}) = {initial + step}"
        )
    return [
        (range(0, end), range(end, min(end + step, rows))) for end in range(initial, rows, step)
    ]


def walk_forward_predictions(
    features: pd.DataFrame, future: pd.Series, target: Target, initial: int, step: int
) -> NDArray[np.float64]:
    """Each test row's prediction (NaN for the first ``initial`` rows): the return,
    or P(up) for ``direction``."""
    x = features.to_numpy(dtype=np.float64)
    y = future.to_numpy(dtype=np.float64)
    out = np.full(len(y), np.nan)
    for train, test in walk_forward_splits(len(y), initial, step):
        if target == "return":
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
            model.fit(x[train.start : train.stop], y[train.start : train.stop])
            out[test.start : test.stop] = model.predict(x[test.start : test.stop])
            continue
        up = (y[train.start : train.stop] > 0).astype(int)
        if up.min() == up.max():  # one class only: predict it
            out[test.start : test.stop] = float(up[0])
            continue
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        classifier.fit(x[train.start : train.stop], up)
        out[test.start : test.stop] = classifier.predict_proba(x[test.start : test.stop])[:, 1]
    return out


def evaluate_forecast(
    prices: pd.DataFrame,
    target: Target = "direction",
    *,
    lags: int = 5,
    initial: int = 500,
    step: int = 20,
) -> ForecastReport:
    """Walk-forward evaluation of ``target`` on validated ``prices`` (see
    :func:`check_prices`), with the baselines beside the model."""
    if target not in TARGETS:
        raise Invalid(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    features, future = lagged_features(prices, lags)
    predicted = walk_forward_predictions(features, future, target, initial, step)
    tested = ~np.isnan(predicted)
    actual = future.to_numpy()[tested]
    today = features["return_0"].to_numpy()[tested]
    guess = predicted[tested]
    folds = len(walk_forward_splits(len(future), initial, step))
    dates = features.index[tested]
    if target == "return":
        model = _return_metrics(actual, guess)
        guesses = {"last_value": today, "zero": np.zeros_like(actual)}
        baselines = {name: _return_metrics(actual, g) for name, g in guesses.items()}
        # The edge is a smaller absolute error, period by period.
        edge_z = {
            name: _paired_z(np.abs(g - actual) - np.abs(guess - actual))
            for name, g in guesses.items()
        }
    else:
        up = actual > 0
        majority = _training_majority(future.to_numpy() > 0, initial, step, len(future))[tested]
        hits = up == (guess >= 0.5)
        baseline_hits = {"last_value": up == (today > 0), "majority": up == majority}
        model = {"directional_accuracy": _share(hits)}
        baselines = {name: {"directional_accuracy": _share(h)} for name, h in baseline_hits.items()}
        edge_z = {
            name: _paired_z(hits.astype(float) - h.astype(float))
            for name, h in baseline_hits.items()
        }
    return ForecastReport(
        target=target,
        rows=len(future),
        folds=folds,
        test_rows=int(tested.sum()),
        first_test_date=dates[0].date().isoformat(),
        last_test_date=dates[-1].date().isoformat(),
        model=model,
        baselines=baselines,
        edge_z=edge_z,
    )


def _return_metrics(actual: NDArray[np.float64], guess: NDArray[np.float64]) -> dict[str, float]:
    error = guess - actual
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(float(np.mean(error**2))),
        "directional_accuracy": _share((guess > 0) == (actual > 0)),
    }


def _training_majority(
    up: NDArray[np.bool_], initial: int, step: int, rows: int
) -> NDArray[np.bool_]:
    """Per test row, the more frequent direction of its training window (up on a tie)."""
    out = np.zeros(rows, dtype=bool)
    for train, test in walk_forward_splits(rows, initial, step):
        out[test.start : test.stop] = up[train.start : train.stop].mean() >= 0.5
    return out


def _paired_z(edge: NDArray[np.float64]) -> float:
    """Mean of per-period edges over its standard error (0 when they never differ)."""
    spread = float(np.std(edge, ddof=1))
    if spread == 0.0:
        return 0.0
    return float(np.mean(edge) / (spread / math.sqrt(edge.size)))


def _share(hits: NDArray[np.bool_]) -> float:
    return float(np.mean(hits))
