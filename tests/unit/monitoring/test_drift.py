"""PSI/CSI, the chi-square test, and live counts binned like the reference profile."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.monitoring.counts import SCORE, LiveCounts, binnings_of
from finmaas.monitoring.drift import EPSILON, Thresholds, chi_square_p, drift_of, psi
from finmaas.schema import build_reference_profile, encode_frame


def test_psi_of_a_hand_computed_example() -> None:
    expected = np.array([0.25, 0.25, 0.5])
    actual = np.array([0.5, 0.25, 0.25])
    by_hand = (0.5 - 0.25) * math.log(0.5 / 0.25) + 0 + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand, abs=1e-12)
    assert by_hand == pytest.approx(0.3466, abs=1e-4)
    assert psi(expected, expected) == 0.0


def test_empty_bins_are_floored_at_epsilon() -> None:
    expected = np.array([0.0, 0.5, 0.5])
    actual = np.array([0.1, 0.45, 0.45])
    first = (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    rest = 2 * (0.45 - 0.5) * math.log(0.45 / 0.5)
    assert psi(expected, actual) == pytest.approx(first + rest, abs=1e-12)
    assert math.isfinite(psi(actual, expected))


@pytest.mark.parametrize(
    ("index", "band"),
    [(0.0, "stable"), (0.0999, "stable"), (0.10, "watch"), (0.2499, "watch"), (0.25, "alert")],
)
def test_bands(index: float, band: str) -> None:
    assert Thresholds().band(index) == band
    assert Thresholds(watch=0.05, alert=0.5).band(0.3) == "watch"


def test_chi_square_tells_chance_from_a_shift() -> None:
    shares = np.array([0.2, 0.3, 0.5])
    assert chi_square_p(shares, np.array([200, 300, 500])) == pytest.approx(1.0)
    assert chi_square_p(shares, np.array([500, 300, 200])) < 1e-6
    assert chi_square_p(shares, np.array([3, 2, 5])) > 0.5  # ten rows: cannot tell
    assert math.isnan(chi_square_p(shares, np.array([0, 0, 0])))


@pytest.fixture(scope="module")
def reference() -> tuple[object, np.ndarray, dict[str, object]]:
    signature = german_credit_signature()
    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET])
    x = encode_frame(signature, frame)
    scores = np.linspace(0.01, 0.99, len(x))
    profile = build_reference_profile(signature, x, scores).model_dump(mode="json")
    return signature, x, profile


def _drifts(
    reference: tuple[object, np.ndarray, dict[str, object]], x: np.ndarray, scores: np.ndarray
) -> dict[str, object]:
    signature, _, profile = reference
    binnings = binnings_of(signature, profile)  # type: ignore[arg-type]
    live = LiveCounts(binnings)
    for start in range(0, len(x), 7):  # served in small batches
        live.add(x[start : start + 7], scores[start : start + 7])
    counts = live.count(live.take())
    assert live.take() == []
    return {
        b.name: drift_of(b.name, b.labels, b.expected, counts[b.name], Thresholds())
        for b in binnings
    }


def test_the_reference_sample_itself_does_not_drift(
    reference: tuple[object, np.ndarray, dict[str, object]],
) -> None:
    _, x, _ = reference
    drifts = _drifts(reference, x, np.linspace(0.01, 0.99, len(x)))
    assert len(drifts) == 21  # 20 inputs and the score
    for name, drift in drifts.items():
        assert drift.rows == len(x), name
        assert drift.index < 1e-9, name
        assert drift.band == "stable"
        assert sum(drift.actual) == pytest.approx(1.0)


def test_a_shifted_input_alerts_while_the_others_stay_stable(
    reference: tuple[object, np.ndarray, dict[str, object]],
) -> None:
    signature, x, _ = reference
    names = [f.name for f in signature.inputs]  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    live = x[rng.integers(0, len(x), 4000)].astype(np.float64)
    live[:, names.index("duration_in_month")] += 24  # longer loans
    drifts = _drifts(reference, live, rng.uniform(0.01, 0.99, len(live)))
    shifted = drifts["duration_in_month"]
    assert shifted.index >= 0.25
    assert shifted.band == "alert"
    assert shifted.p_value < 1e-6
    for name in names:
        if name != "duration_in_month":
            assert drifts[name].index < 0.10, name
    assert drifts[SCORE].index < 0.10


def test_no_live_rows() -> None:
    drift = drift_of("x", ("a", "b"), np.array([0.5, 0.5]), np.array([0, 0]), Thresholds())
    assert (drift.rows, drift.band, drift.actual) == (0, None, ())
    assert math.isnan(drift.index)


def test_below_the_minimum_count_there_is_no_index_but_the_shares_stay() -> None:
    expected = np.full(10, 0.1)
    counts = np.zeros(10, dtype=np.int64)
    counts[[0, 3]] = 1  # two rows: a PSI of 6.8 without the minimum
    labels = tuple(str(i) for i in range(10))
    few = drift_of("x", labels, expected, counts, Thresholds(), min_rows=100)
    assert (few.rows, few.band) == (2, None)
    assert math.isnan(few.index)
    assert math.isnan(few.p_value)
    assert few.actual[0] == few.actual[3] == 0.5
    counts[:] = 10
    enough = drift_of("x", labels, expected, counts, Thresholds(), min_rows=100)
    assert (enough.rows, enough.band, enough.index) == (100, "stable", pytest.approx(0.0))
