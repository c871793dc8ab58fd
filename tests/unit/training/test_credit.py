"""The credit template on German Credit: both candidates, end to end."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import orjson
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.errors import Invalid
from finmaas.registry.fields import check_metrics
from finmaas.schema import ModelSignature, encode_frame
from finmaas.training.credit import CandidateResult, train_credit_candidates
from finmaas.training.metrics import roc_auc


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_german_credit()


@pytest.fixture(scope="module")
def signature() -> ModelSignature:
    return german_credit_signature()


@pytest.fixture(scope="module")
def y(frame: pd.DataFrame) -> np.ndarray:
    return (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)


@pytest.fixture(scope="module")
def trained(
    frame: pd.DataFrame, signature: ModelSignature
) -> tuple[list[CandidateResult], list[str]]:
    messages: list[str] = []
    candidates = train_credit_candidates(
        frame,
        signature,
        GERMAN_CREDIT_TARGET,
        repeats=1,
        candidates=("lightgbm", "scorecard"),
        progress=messages.append,
    )
    return candidates, messages


@pytest.fixture(scope="module")
def candidates(trained: tuple[list[CandidateResult], list[str]]) -> list[CandidateResult]:
    return trained[0]


def test_two_candidates_lightgbm_then_scorecard(candidates: list[CandidateResult]) -> None:
    assert [(c.name, c.kind) for c in candidates] == [
        ("lightgbm", "lightgbm"),
        ("scorecard", "scorecard"),
    ]
    assert isinstance(candidates[0].model, lgb.Booster)
    assert isinstance(candidates[1].model, Pipeline)


@pytest.mark.parametrize("index", [0, 1], ids=["lightgbm", "scorecard"])
def test_cv_auc_is_in_the_expected_range(candidates: list[CandidateResult], index: int) -> None:
    metrics = candidates[index].cv_metrics
    assert 0.74 <= metrics["auc"] <= 0.82
    assert metrics["gini"] == pytest.approx(2 * metrics["auc"] - 1)
    assert metrics["reject_all_cost"] == pytest.approx(0.70)
    # Cost-sensitive decisions beat rejecting everyone.
    assert metrics["expected_cost"] < metrics["reject_all_cost"]


@pytest.mark.parametrize("index", [0, 1], ids=["lightgbm", "scorecard"])
def test_oof_probabilities_cover_every_row(
    candidates: list[CandidateResult], y: np.ndarray, index: int
) -> None:
    oof = candidates[index].oof_probabilities
    assert oof.shape == (1000,)
    assert ((oof > 0) & (oof < 1)).all()
    assert roc_auc(y, oof) == pytest.approx(candidates[index].cv_metrics["auc"], abs=0.02)


@pytest.mark.parametrize("index", [0, 1], ids=["lightgbm", "scorecard"])
def test_final_model_scores_the_served_encoding_as_p_bad(
    candidates: list[CandidateResult],
    frame: pd.DataFrame,
    signature: ModelSignature,
    y: np.ndarray,
    index: int,
) -> None:
    model = candidates[index].model
    x = encode_frame(signature, frame.drop(columns=[GERMAN_CREDIT_TARGET]))
    if isinstance(model, Pipeline):
        assert list(model.classes_) == [0, 1]
        p = model.predict_proba(x)[:, 1]
    else:
        p = model.predict(x)
    assert p.shape == (1000,)
    assert ((p > 0) & (p < 1)).all()
    # Probabilities of "bad": they rank bads high and average near the bad rate.
    assert roc_auc(y, p) > 0.8
    assert p.mean() == pytest.approx(0.30, abs=0.02)


def test_metrics_and_params_fit_the_registry(candidates: list[CandidateResult]) -> None:
    for candidate in candidates:
        assert check_metrics(candidate.cv_metrics) == candidate.cv_metrics
        assert all(f"{name}_sd" in candidate.cv_metrics for name in ("auc", "ks", "accuracy"))
        assert orjson.loads(orjson.dumps(candidate.params)) == candidate.params
        assert candidate.params["cv"] == "stratified 5-fold"
        assert candidate.params["cv_seed"] == 42


def test_lightgbm_is_small_and_declares_its_categories(candidates: list[CandidateResult]) -> None:
    booster = candidates[0].model
    assert booster.num_trees() == candidates[0].params["num_boost_round"] == 200
    assert booster.params["max_depth"] == 2
    assert len(candidates[0].params["categorical_features"]) == 13
    assert booster.feature_name() == list(german_credit_signature().feature_names)


def test_scorecard_keeps_the_grid_point_with_the_lowest_cv_log_loss(
    candidates: list[CandidateResult],
) -> None:
    params = candidates[1].params
    best = min(params["grid"], key=lambda point: point["cv_log_loss"])
    assert (params["C"], params["class_weight"]) == (best["C"], best["class_weight"])
    assert candidates[1].cv_metrics["log_loss"] == pytest.approx(best["cv_log_loss"], abs=1e-6)
    logistic = candidates[1].model.named_steps["logistic"]
    assert (logistic.C, logistic.class_weight) == (params["C"], params["class_weight"])


def test_progress_reports_each_fit(trained: tuple[list[CandidateResult], list[str]]) -> None:
    messages = trained[1]
    assert messages[:6] == [
        "lightgbm: fold 1/5",
        "lightgbm: fold 2/5",
        "lightgbm: fold 3/5",
        "lightgbm: fold 4/5",
        "lightgbm: fold 5/5",
        "lightgbm: refit on all rows",
    ]
    auc, sd = (trained[0][0].cv_metrics[key] for key in ("auc", "auc_sd"))
    assert messages[6] == f"lightgbm done (1/2 candidates): CV AUC {auc:.3f} ± {sd:.3f}"
    assert messages[7] == "scorecard C=0.1 class_weight=None: fold 1/5"
    assert messages[-2] == "scorecard: refit on all rows"
    assert messages[-1].startswith("scorecard done (2/2 candidates): CV AUC 0.7")


def test_same_seed_same_result_other_seed_other_folds(
    candidates: list[CandidateResult], frame: pd.DataFrame, signature: ModelSignature
) -> None:
    again = train_credit_candidates(
        frame, signature, GERMAN_CREDIT_TARGET, repeats=1, candidates=("lightgbm", "scorecard")
    )
    for first, second in zip(candidates, again, strict=True):
        assert np.array_equal(first.oof_probabilities, second.oof_probabilities)
        assert first.cv_metrics == second.cv_metrics
    assert candidates[0].model.model_to_string() == again[0].model.model_to_string()
    other = train_credit_candidates(
        frame, signature, GERMAN_CREDIT_TARGET, repeats=1, seed=7, candidates=("lightgbm",)
    )
    assert not np.array_equal(candidates[0].oof_probabilities, other[0].oof_probabilities)


def test_fewer_folds_on_a_sample(frame: pd.DataFrame, signature: ModelSignature) -> None:
    sample = frame.sample(300, random_state=0).reset_index(drop=True)
    candidates = train_credit_candidates(
        sample, signature, GERMAN_CREDIT_TARGET, folds=3, repeats=1
    )
    assert [c.oof_probabilities.shape for c in candidates] == [(300,), (300,), (300,)]
    assert candidates[1].params["cv"] == "stratified 3-fold"


def test_by_default_three_candidates_on_repeated_folds(
    frame: pd.DataFrame, signature: ModelSignature
) -> None:
    messages: list[str] = []
    candidates = train_credit_candidates(
        frame, signature, GERMAN_CREDIT_TARGET, progress=messages.append
    )
    assert [c.kind for c in candidates] == ["lightgbm", "scorecard", "network"]
    assert isinstance(candidates[2].model, onnx.ModelProto)
    assert "lightgbm (repeat 2/2): fold 5/5" in messages
    assert messages[-2] == "network: refit on all rows"
    assert messages[-1].startswith("network done (3/3 candidates): CV AUC 0.7")
    for candidate in candidates:
        assert candidate.params["cv"] == "stratified 5-fold × 2 repeats"
        assert 0.74 < candidate.cv_metrics["auc"] < 0.82
    # The mean of two repeats' out-of-fold scores, each from models that did not see the row.
    assert candidates[0].oof_probabilities.shape == (1000,)
    with pytest.raises(Invalid) as caught:
        train_credit_candidates(
            frame, signature, GERMAN_CREDIT_TARGET, candidates=("lightgbm", "lightgbm")
        )
    assert str(caught.value) == (
        "candidates must be distinct names among lightgbm, scorecard, network, "
        "got lightgbm, lightgbm"
    )


def test_bad_inputs(frame: pd.DataFrame, signature: ModelSignature) -> None:
    with pytest.raises(Invalid) as caught:
        train_credit_candidates(
            frame.drop(columns=[GERMAN_CREDIT_TARGET]), signature, "creditability"
        )
    assert str(caught.value) == "data has no target column 'creditability'"

    relabelled = frame.copy()
    relabelled.loc[3, GERMAN_CREDIT_TARGET] = "default"
    with pytest.raises(Invalid) as caught:
        train_credit_candidates(relabelled, signature, GERMAN_CREDIT_TARGET)
    assert (
        str(caught.value) == "row 3: target 'creditability' must be 'good' or 'bad', got 'default'"
    )

    regression = ModelSignature(task="regression", inputs=signature.inputs)
    with pytest.raises(Invalid) as caught:
        train_credit_candidates(frame, regression, GERMAN_CREDIT_TARGET)
    assert str(caught.value) == "credit training needs a binary signature, got task 'regression'"

    with pytest.raises(Invalid) as caught:
        train_credit_candidates(frame, signature, GERMAN_CREDIT_TARGET, folds=1)
    assert str(caught.value) == "folds must be an integer ≥ 2, got 1"
