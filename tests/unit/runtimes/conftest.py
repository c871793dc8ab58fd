"""One session-wide tiny model per runtime; see :mod:`.cases`."""

from __future__ import annotations

from pathlib import Path

import pytest

from finmaas.runtimes import ModelFormat
from tests.unit.runtimes import cases
from tests.unit.runtimes.cases import Case

CASE_NAMES = (
    "lightgbm-binary",
    "lightgbm-multiclass",
    "lightgbm-regression",
    "xgboost-json-binary",
    "xgboost-ubj-binary",
    "skops-logreg-pipeline",
    "skops-ridge",
    "onnx-logreg",
    "onnx-regression",
    "pickle-logreg",
)
"""Every runtime case, by the name of its fixture (``-`` read as ``_``)."""


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def runtime_case(request: pytest.FixtureRequest) -> Case:
    """The case named by ``request.param``; parametrize with ``indirect=True``."""
    case = request.getfixturevalue(str(request.param).replace("-", "_"))
    assert isinstance(case, Case)
    return case


@pytest.fixture(scope="session")
def lightgbm_binary(artifact_dir: Path) -> Case:
    return cases.lightgbm_case(artifact_dir, "binary")


@pytest.fixture(scope="session")
def lightgbm_multiclass(artifact_dir: Path) -> Case:
    return cases.lightgbm_case(artifact_dir, "multiclass")


@pytest.fixture(scope="session")
def lightgbm_regression(artifact_dir: Path) -> Case:
    return cases.lightgbm_case(artifact_dir, "regression")


@pytest.fixture(scope="session")
def xgboost_json_binary(artifact_dir: Path) -> Case:
    return cases.xgboost_case(artifact_dir, ModelFormat.XGBOOST_JSON)


@pytest.fixture(scope="session")
def xgboost_ubj_binary(artifact_dir: Path) -> Case:
    return cases.xgboost_case(artifact_dir, ModelFormat.XGBOOST_UBJ)


@pytest.fixture(scope="session")
def skops_logreg_pipeline(artifact_dir: Path) -> Case:
    return cases.skops_logistic_case(artifact_dir)


@pytest.fixture(scope="session")
def skops_ridge(artifact_dir: Path) -> Case:
    return cases.skops_ridge_case(artifact_dir)


@pytest.fixture(scope="session")
def onnx_logreg(artifact_dir: Path) -> Case:
    return cases.onnx_logistic_case(artifact_dir)


@pytest.fixture(scope="session")
def onnx_regression(artifact_dir: Path) -> Case:
    return cases.onnx_regression_case(artifact_dir)


@pytest.fixture(scope="session")
def pickle_logreg(artifact_dir: Path) -> Case:
    return cases.pickle_logistic_case(artifact_dir)
