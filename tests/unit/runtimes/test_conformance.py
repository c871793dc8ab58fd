"""The runtime contract, checked against every runtime (after scikit-learn's estimator_checks).

Each ``check_*`` takes a :class:`~tests.unit.runtimes.cases.Case` and asserts one
property of ``base.Predictor``; :func:`parametrize_with_checks` runs every
check on every case with ids like ``onnx-logreg-check_deterministic``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from finmaas.errors import PredictorFailed, SchemaMismatch
from finmaas.runtimes import Predictor, PredictorInfo, create_predictor
from tests.unit.runtimes.cases import N_FEATURES, Case
from tests.unit.runtimes.conftest import CASE_NAMES

Check = Callable[[Case], None]

THREADS = 8
LIBRARIES = {
    "lightgbm": "lightgbm ",
    "xgboost-json": "xgboost ",
    "xgboost-ubj": "xgboost ",
    "onnx": "onnxruntime ",
    "skops": "scikit-learn ",
    "pickle": "scikit-learn ",
}


def check_not_loaded_raises(case: Case) -> None:
    predictor = create_predictor(case.fmt, case.signature, allow_pickle=case.allow_pickle)
    with pytest.raises(PredictorFailed) as excinfo:
        predictor.predict(case.x)
    assert str(excinfo.value) == "model is not loaded"
    with pytest.raises(PredictorFailed) as excinfo:
        _ = predictor.info
    assert str(excinfo.value) == "model is not loaded"


def check_info(case: Case) -> None:
    predictor = case.load()
    # after load: on Python 3.11 isinstance() reads the ``info`` property, which raises before
    assert isinstance(predictor, Predictor)
    info = predictor.info
    assert isinstance(info, PredictorInfo)
    assert (info.format, info.n_features) == (case.fmt, N_FEATURES)
    assert info.library.startswith(LIBRARIES[case.fmt])


def check_output_shape_and_range(case: Case) -> None:
    scores = case.load().predict(case.x)
    rows = case.x.shape[0]
    assert scores.dtype == np.float64
    if case.signature.task == "multiclass":
        assert scores.shape == (rows, len(case.signature.classes or ()))
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    else:
        assert scores.shape == (rows,)
    if case.signature.task != "regression":
        assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(scores, case.expected, rtol=1e-6, atol=1e-6)


def check_batch_equals_rows(case: Case) -> None:
    predictor = case.load()
    batch = predictor.predict(case.x)
    rows = np.concatenate([predictor.predict(case.x[i : i + 1]) for i in range(len(case.x))])
    np.testing.assert_allclose(rows, batch, rtol=1e-6, atol=1e-7)


def check_deterministic(case: Case) -> None:
    predictor = case.load()
    np.testing.assert_array_equal(predictor.predict(case.x), predictor.predict(case.x))


def check_empty_batch(case: Case) -> None:
    scores = case.load().predict(case.x[:0])
    expected = (0, 3) if case.signature.task == "multiclass" else (0,)
    assert scores.shape == expected
    assert scores.dtype == np.float64


def check_rejects_wrong_feature_count(case: Case) -> None:
    predictor = case.load()
    wide = np.zeros((2, N_FEATURES + 1))
    with pytest.raises(SchemaMismatch) as excinfo:
        predictor.predict(wide)
    assert str(excinfo.value) == f"expected {N_FEATURES} features per row, got {N_FEATURES + 1}"
    with pytest.raises(SchemaMismatch) as excinfo:
        predictor.predict(case.x[0])
    assert str(excinfo.value) == f"expected a 2-D array of shape (rows, {N_FEATURES}), got 1-D"


def check_float32_and_float64(case: Case) -> None:
    predictor = case.load()
    x32 = case.x.astype(np.float32)
    from32 = predictor.predict(x32)
    assert from32.dtype == np.float64
    np.testing.assert_array_equal(from32, predictor.predict(x32.astype(np.float64)))


def check_any_memory_layout(case: Case) -> None:
    predictor = case.load()
    expected = predictor.predict(case.x)
    wide = np.hstack([case.x, np.ones((len(case.x), 3))])
    for layout in (np.asfortranarray(case.x), wide[:, :N_FEATURES], case.x[::-1][::-1]):
        np.testing.assert_array_equal(predictor.predict(layout), expected)


def check_input_not_modified(case: Case) -> None:
    x = case.x.copy()
    case.load().predict(x)
    np.testing.assert_array_equal(x, case.x)


def check_concurrent_predict_thread_safe(case: Case) -> None:
    predictor = case.load()
    slices = [case.x[i : i + 1 + i % 7] for i in range(len(case.x) - 8)]
    serial = [predictor.predict(batch) for batch in slices]
    start = threading.Barrier(THREADS)

    def work(_: int) -> list[np.ndarray]:
        start.wait()
        return [predictor.predict(batch) for batch in slices]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    for result in results:
        for got, want in zip(result, serial, strict=True):
            np.testing.assert_array_equal(got, want)


def check_reload_same_output(case: Case) -> None:
    predictor = case.load()
    first = predictor.predict(case.x)
    predictor.load(case.data)
    np.testing.assert_array_equal(predictor.predict(case.x), first)
    np.testing.assert_array_equal(case.load().predict(case.x), first)


CHECKS: tuple[Check, ...] = (
    check_not_loaded_raises,
    check_info,
    check_output_shape_and_range,
    check_batch_equals_rows,
    check_deterministic,
    check_empty_batch,
    check_rejects_wrong_feature_count,
    check_float32_and_float64,
    check_any_memory_layout,
    check_input_not_modified,
    check_concurrent_predict_thread_safe,
    check_reload_same_output,
)


def parametrize_with_checks(case_names: Iterable[str]) -> pytest.MarkDecorator:
    """Run every check on every case, with ids ``<case>-<check>``."""
    params = [
        pytest.param(name, check, id=f"{name}-{check.__name__}")
        for name in case_names
        for check in CHECKS
    ]
    return pytest.mark.parametrize(("runtime_case", "check"), params, indirect=["runtime_case"])


@parametrize_with_checks(CASE_NAMES)
def test_runtime_conforms(runtime_case: Case, check: Check) -> None:
    check(runtime_case)
