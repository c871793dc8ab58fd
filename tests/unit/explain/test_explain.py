"""Contributions, reference populations and reasons on the quickstart's two credit models."""

from __future__ import annotations

import itertools
import math
import warnings
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import shap
from sklearn.neural_network import MLPClassifier

from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.errors import Invalid, NotSupported
from finmaas.explain import Explainer, build_explanation_profile
from finmaas.explain.methods import margin, sampled_method
from finmaas.explain.profile import MIN_CUTOFF_ROWS, default_reason_text
from finmaas.publish.registration import serialise_model
from finmaas.registry import ModelVersion
from finmaas.runtimes import Predictor, load_predictor
from finmaas.schema import Feature, ModelSignature, build_reference_profile, encode_frame
from finmaas.training.credit import train_credit_candidates

THRESHOLD = 0.2


@pytest.fixture(scope="module")
def data() -> tuple[ModelSignature, np.ndarray, Any, Any]:
    frame = load_german_credit()
    signature = german_credit_signature()
    booster, scorecard = (
        c.model
        for c in train_credit_candidates(
            frame,
            signature,
            GERMAN_CREDIT_TARGET,
            folds=2,
            repeats=1,
            candidates=("lightgbm", "scorecard"),
        )
    )
    x = encode_frame(signature, frame.drop(columns=[GERMAN_CREDIT_TARGET]))
    return signature, x, booster, scorecard


def _predictor(model: Any, signature: ModelSignature) -> Predictor:
    serialised = serialise_model(model)
    return load_predictor(serialised.data, serialised.fmt, signature)


def _version(
    signature: ModelSignature,
    explanation: dict[str, Any] | None,
    fmt: str,
    reference_profile: dict[str, Any] | None = None,
) -> ModelVersion:
    return ModelVersion(
        model="credit-risk",
        version=1,
        status="active",
        artifact_digest="0" * 64,
        artifact_format=fmt,
        artifact_size=1,
        signature_json=signature.to_dict(),
        metrics={"threshold": THRESHOLD},
        params={},
        tags={},
        parent_version=None,
        lineage={},
        reference_profile=reference_profile,
        model_card="",
        created_by="t",
        created_at=datetime.now(UTC),
        archived_at=None,
        artifact_purged_at=None,
        explanation=explanation,
    )


def _explainer(
    model: Any, signature: ModelSignature, x: np.ndarray, **options: Any
) -> tuple[Explainer, Predictor]:
    predictor = _predictor(model, signature)
    profile = build_explanation_profile(predictor, signature, x, threshold=THRESHOLD, **options)
    fmt = serialise_model(model).fmt.value
    return Explainer(
        _version(signature, profile.model_dump(mode="json"), fmt), predictor
    ), predictor


def _explain(explainer: Explainer, x: np.ndarray, reasons: int = 4) -> list[dict[str, Any]]:
    return explainer.rows(explainer.check()(x), x, reasons)


# -- methods and additivity -------------------------------------------------------------


def test_lightgbm_uses_exact_treeshap_matching_shap(data: Any) -> None:
    signature, x, booster, _ = data
    explainer, _ = _explainer(booster, signature, x)
    assert explainer.method == "tree_shap"
    raw = explainer.check()(x[:50])
    with warnings.catch_warnings():  # shap notes a change in its output shape
        warnings.simplefilter("ignore", UserWarning)
        reference = shap.TreeExplainer(booster).shap_values(x[:50])
    reference = reference[1] if isinstance(reference, list) else reference
    np.testing.assert_allclose(raw[:, :-1], reference, atol=1e-6)


@pytest.mark.parametrize("reference", ["sample", "cutoff"])
def test_contributions_add_up_to_the_margin(data: Any, reference: str) -> None:
    signature, x, booster, scorecard = data
    for model in (booster, scorecard):
        explainer, predictor = _explainer(model, signature, x, reference=reference)
        rows = _explain(explainer, x[:200])
        margins = margin(predictor, signature, x[:200])
        sums = np.array([r["base_value"] + sum(r["contributions"].values()) for r in rows])
        np.testing.assert_allclose(sums, margins, atol=1e-6)
        np.testing.assert_allclose([r["output"] for r in rows], margins, atol=1e-6)
        assert all(r["exact"] and r["reference"] == reference for r in rows)


def test_the_base_value_is_the_reference_populations_mean_margin(data: Any) -> None:
    signature, x, booster, _ = data
    explainer, predictor = _explainer(booster, signature, x, reference="sample")
    profile = explainer.profile
    assert profile is not None
    assert profile.reference_rows == len(x)
    assert profile.base_value == pytest.approx(margin(predictor, signature, x).mean(), abs=1e-9)
    rows = _explain(explainer, x)
    mean = np.array([list(r["contributions"].values()) for r in rows]).mean(axis=0)
    np.testing.assert_allclose(mean, 0.0, atol=1e-9)  # centred on the whole sample


def test_cutoff_reference_is_the_approvals_nearest_the_threshold(data: Any) -> None:
    signature, x, booster, _ = data
    explainer, predictor = _explainer(booster, signature, x, reference="cutoff")
    profile = explainer.profile
    assert profile is not None
    scores = predictor.predict(x)
    approved = np.sort(scores[scores < THRESHOLD])[::-1]
    expected = max(MIN_CUTOFF_ROWS, approved.size // 10)
    assert profile.reference_rows == expected
    nearest = approved[:expected]
    p = np.clip(nearest, 1e-15, 1 - 1e-15)
    assert profile.base_value == pytest.approx(np.mean(np.log(p / (1 - p))), abs=1e-9)
    assert math.log(THRESHOLD / (1 - THRESHOLD)) > profile.base_value


def test_the_scorecard_is_additive_and_sums_its_one_hot_columns_back(data: Any) -> None:
    signature, x, _, scorecard = data
    explainer, _ = _explainer(scorecard, signature, x)
    assert explainer.method == "additive"
    assert explainer.profile is not None
    rows = _explain(explainer, x[:20])
    # Independent computation: w · (t(x) - mean t(reference)) per transformed column,
    # summed over the columns each input became.
    columns, logistic = scorecard.named_steps["columns"], scorecard.named_steps["logistic"]
    t = columns.transform(x).astype(np.float64)
    t = t.toarray() if hasattr(t, "toarray") else t
    per_column = logistic.coef_[0] * (t - t.mean(axis=0))
    owner = _owners(columns, len(signature.inputs))
    for row, explanation in enumerate(rows):
        expected = np.zeros(len(signature.inputs))
        np.add.at(expected, owner, per_column[row])
        found = np.array(list(explanation["contributions"].values()))
        np.testing.assert_allclose(found, expected, atol=1e-6)


def _owners(columns: Any, k: int) -> np.ndarray:
    """The input each transformed column of a fitted ColumnTransformer came from."""
    owner = []
    for name, transformer, inputs in columns.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if hasattr(transformer, "categories_"):
            for col, cats in zip(inputs, transformer.categories_, strict=True):
                owner.extend([col] * len(cats))
        else:
            owner.extend(inputs)
    assert sorted(set(owner)) == list(range(k))
    return np.array(owner)


def test_any_other_model_gets_sampled_contributions_that_add_up(data: Any) -> None:
    signature, x, _, _ = data
    frame = load_german_credit()
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").astype(int).to_numpy()
    network = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(x, y)
    explainer, predictor = _explainer(network, signature, x)
    profile = explainer.profile
    assert profile is not None
    assert (profile.method, explainer.method, explainer.exact) == ("sampled", "sampled", False)
    assert profile.background is not None
    assert len(profile.background) == 16
    rows = _explain(explainer, x[:30])
    margins = margin(predictor, signature, x[:30])
    sums = np.array([r["base_value"] + sum(r["contributions"].values()) for r in rows])
    np.testing.assert_allclose(sums, margins, atol=1e-9)
    assert all(r["exact"] is False and r["method"] == "sampled" for r in rows)
    again = _explain(explainer, x[:30])
    assert again == rows  # fixed permutations and background: the same row, the same answer


def test_sampled_contributions_with_every_permutation_equal_exact_shap() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] * x[:, 1] + np.sin(x[:, 2]) + 0.1 * x[:, 3] > 0).astype(int)
    signature = ModelSignature(
        task="binary",
        classes=("good", "bad"),
        positive_class="bad",
        inputs=tuple(Feature(name=f"x{i}", dtype="float") for i in range(4)),
    )
    network = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3000, random_state=0).fit(x, y)
    predictor = _predictor(network, signature)
    background = x[:8]
    every = np.array(list(itertools.permutations(range(4))))
    contribute = sampled_method(predictor, signature, background, every)

    def log_odds(rows: np.ndarray) -> np.ndarray:
        return margin(predictor, signature, rows)

    exact = shap.explainers.Exact(log_odds, shap.maskers.Independent(background, max_samples=8))
    reference = exact(x[100:110]).values
    ours = contribute(x[100:110])
    np.testing.assert_allclose(ours[:, :4], reference, atol=1e-6)
    np.testing.assert_allclose(ours[:, 4], log_odds(background).mean(), atol=1e-12)


def test_a_version_without_a_profile(data: Any) -> None:
    signature, x, booster, scorecard = data
    tree = Explainer(_version(signature, None, "lightgbm"), _predictor(booster, signature))
    rows = _explain(tree, x[:5])
    assert {r["reference"] for r in rows} == {"model"}  # TreeSHAP's own expected value
    booster_margin = booster.predict(x[:5], raw_score=True)
    np.testing.assert_allclose([r["output"] for r in rows], booster_margin, atol=1e-6)

    linear = Explainer(_version(signature, None, "skops"), _predictor(scorecard, signature))
    with pytest.raises(NotSupported) as caught:
        linear.check()
    assert str(caught.value) == (
        "model 'credit-risk' version 1 (skops) has no explanation profile: publish it with a "
        "reference sample (--reference) to explain it"
    )


# -- reasons ------------------------------------------------------------------------------


def test_reasons_are_the_largest_adverse_contributions_in_order(data: Any) -> None:
    signature, x, booster, _ = data
    explainer, predictor = _explainer(booster, signature, x)
    rows = _explain(explainer, x[:100], reasons=4)
    scores = predictor.predict(x[:100])
    for row, explanation in enumerate(rows):
        contributions = explanation["contributions"]
        adverse = sorted((v, k) for k, v in contributions.items() if v > 0)[::-1][:4]
        reasons = explanation["reasons"]
        assert [(r["contribution"], r["feature"]) for r in reasons] == adverse
        assert len(reasons) <= 4
        p = scores[row]
        for reason in reasons:
            without = 1 / (1 + math.exp(-(explanation["output"] - reason["contribution"])))
            assert reason["probability_effect"] == pytest.approx(p - without, abs=1e-9)
            assert 0 < reason["probability_effect"] < 1


def test_reason_values_and_texts(data: Any) -> None:
    signature, x, booster, _ = data
    codes = {"credit_amount": "Amount of credit requested is high relative to history"}
    explainer, _ = _explainer(booster, signature, x, reason_texts=codes)
    applicant = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).iloc[:200]
    rows = _explain(explainer, x[:200], reasons=len(signature.inputs))
    seen = set()
    for row, explanation in enumerate(rows):
        for reason in explanation["reasons"]:
            name = reason["feature"]
            seen.add(name)
            raw = applicant.iloc[row][name]
            assert reason["value"] == (raw.item() if hasattr(raw, "item") else raw)
            expected = codes.get(name, default_reason_text(name))
            assert reason["text"] == expected
    assert "credit_amount" in seen
    assert default_reason_text("duration_in_month") == "Duration in month"


def test_unused_features_never_give_a_reason(data: Any) -> None:
    signature, x, _, _ = data
    y = (load_german_credit()[GERMAN_CREDIT_TARGET] == "bad").astype(int).to_numpy()
    # constant columns give no split: the model uses the first three inputs only
    padded = np.column_stack([x[:, :3], np.zeros((len(x), len(signature.inputs) - 3))])
    three = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4},
        lgb.Dataset(padded, y),
        20,
    )
    explainer, _ = _explainer(three, signature, x)
    names = {f.name for f in signature.inputs[:3]}
    for explanation in _explain(explainer, x[:100], reasons=len(signature.inputs)):
        assert {r["feature"] for r in explanation["reasons"]} <= names


def test_reasons_are_stable_under_tiny_numeric_perturbations(data: Any) -> None:
    signature, x, booster, _ = data
    explainer, predictor = _explainer(booster, signature, x)
    rejected = x[predictor.predict(x) >= THRESHOLD][:60]
    numeric = [i for i, f in enumerate(signature.inputs) if f.dtype in ("int", "float")]
    rng = np.random.default_rng(0)
    before = [[r["feature"] for r in e["reasons"]] for e in _explain(explainer, rejected)]
    for _ in range(5):
        nudged = rejected.copy()
        scale = np.abs(nudged[:, numeric]) * 1e-9 + 1e-12
        nudged[:, numeric] += rng.uniform(-1, 1, size=scale.shape) * scale
        after = [[r["feature"] for r in e["reasons"]] for e in _explain(explainer, nudged)]
        assert after == before


@pytest.mark.parametrize(("count", "ok"), [(None, 4), (1, 1), (20, 20), (0, None), (21, None)])
def test_reason_count_bounds(data: Any, count: int | None, ok: int | None) -> None:
    signature, x, booster, _ = data
    explainer, _ = _explainer(booster, signature, x[:100])
    if ok is not None:
        assert explainer.check_reasons(count) == ok
        return
    with pytest.raises(Invalid) as caught:
        explainer.check_reasons(count)
    assert str(caught.value) == f"reasons must be a whole number from 1 to 20, got {count}"


# -- profile refusals -------------------------------------------------------------------


def test_bad_profile_options_are_refused(data: Any) -> None:
    signature, x, booster, _ = data
    predictor = _predictor(booster, signature)
    with pytest.raises(Invalid) as reference:
        build_explanation_profile(predictor, signature, x, threshold=0.2, reference="random")
    assert str(reference.value) == "explanation reference must be one of sample, cutoff"
    with pytest.raises(Invalid) as unknown:
        build_explanation_profile(
            predictor, signature, x, threshold=0.2, reason_texts={"salary": "Salary too low"}
        )
    assert str(unknown.value) == "reason code for 'salary': the signature has no such input"
    with pytest.raises(Invalid) as empty:
        build_explanation_profile(
            predictor, signature, x, threshold=0.2, reason_texts={"credit_amount": " "}
        )
    assert str(empty.value) == "reason code for 'credit_amount' must be text of 1 to 200 characters"
    with pytest.raises(Invalid) as none_approved:
        build_explanation_profile(predictor, signature, x, threshold=0.0, reference="cutoff")
    assert str(none_approved.value) == (
        "no reference row is approved at the threshold 0; use the 'sample' reference"
    )


# -- counterfactuals ----------------------------------------------------------------------


def _with_profile(booster: Any, signature: ModelSignature, x: np.ndarray) -> Explainer:
    predictor = _predictor(booster, signature)
    explanation = build_explanation_profile(predictor, signature, x, threshold=THRESHOLD)
    reference = build_reference_profile(signature, x, predictor.predict(x)).model_dump(mode="json")
    version = _version(signature, explanation.model_dump(mode="json"), "lightgbm", reference)
    return Explainer(version, predictor)


def _encode_change(
    signature: ModelSignature, row: np.ndarray, changes: list[dict[str, Any]]
) -> np.ndarray:
    changed = row.copy()
    names = [f.name for f in signature.inputs]
    for change in changes:
        col = names.index(change["feature"])
        feature = signature.inputs[col]
        to = change["to"]
        changed[col] = (feature.categories or ()).index(to) if feature.dtype == "category" else to
    return changed


def test_counterfactuals_flip_rejections_with_at_most_two_actionable_changes(data: Any) -> None:
    signature, x, booster, _ = data
    explainer = _with_profile(booster, signature, x)
    predictor = _predictor(booster, signature)
    scores = predictor.predict(x[:120])
    results = explainer.counterfactual(x[:120], scores)
    actionable = {f.name for f in signature.inputs if f.actionable}
    assert actionable == {
        "duration_in_month",
        "credit_amount",
        "installment_rate_in_percentage_of_disposable_income",
        "other_debtors_or_guarantors",
    }
    found = 0
    for row, result in enumerate(results):
        if scores[row] < THRESHOLD:
            assert result == {"needed": False}
            continue
        assert result["needed"] is True
        if not result["found"]:
            assert result["message"].startswith("no change to at most 2 of the actionable inputs")
            continue
        found += 1
        changes = result["changes"]
        assert 1 <= len(changes) <= 2
        assert {c["feature"] for c in changes} <= actionable
        changed = _encode_change(signature, x[row], changes)
        flipped = predictor.predict(changed.reshape(1, -1))[0]
        assert flipped == pytest.approx(result["probability"], abs=1e-12)
        assert flipped < THRESHOLD
        for change in changes:
            col = [f.name for f in signature.inputs].index(change["feature"])
            assert change["from"] == explainer_value(signature, col, x[row, col])
    assert found >= 10


def explainer_value(signature: ModelSignature, col: int, code: float) -> object:
    feature = signature.inputs[col]
    return (feature.categories or ())[int(code)] if feature.dtype == "category" else int(code)


def test_the_cheapest_single_change_is_never_beaten_by_the_answer(data: Any) -> None:
    signature, x, booster, _ = data
    explainer = _with_profile(booster, signature, x)
    search = explainer.counterfactuals
    assert search is not None
    predictor = _predictor(booster, signature)
    scores = predictor.predict(x[:80])
    for row in np.flatnonzero(scores >= THRESHOLD)[:15]:
        result = search.search(x[row], float(scores[row]))
        rows, costs, _ = search._candidates(x[row])
        flipping = predictor.predict(rows) < THRESHOLD
        if not flipping.any():
            assert result["found"] is False
            continue
        assert result["cost"] == pytest.approx(costs[flipping].min())


def test_no_counterfactual_without_actionable_inputs_or_within_budget(data: Any) -> None:
    signature, x, booster, _ = data
    still = signature.model_copy(
        update={
            "inputs": tuple(f.model_copy(update={"actionable": False}) for f in signature.inputs)
        }
    )
    explainer = _with_profile(booster, still, x)
    assert explainer.counterfactual(x[:1], np.array([0.99])) == [
        {"needed": True, "found": False, "message": "the model has no actionable inputs"}
    ]
    strict = _with_profile(booster, signature, x)
    assert strict.counterfactuals is not None
    strict.counterfactuals.threshold = 1e-9  # no applicant is that safe
    [result] = strict.counterfactual(x[:1], np.array([0.5]))
    assert result == {
        "needed": True,
        "found": False,
        "message": (
            "no change to at most 2 of the actionable inputs (duration_in_month, credit_amount, "
            "installment_rate_in_percentage_of_disposable_income, other_debtors_or_guarantors) "
            "within the search budget brings the probability below the threshold 1e-09"
        ),
    }


def test_xgboost_uses_exact_treeshap_that_adds_up(data: Any) -> None:
    import xgboost

    signature, x, _, _ = data
    y = (load_german_credit()[GERMAN_CREDIT_TARGET] == "bad").astype(int).to_numpy()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "nthread": 1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=40,
    )
    explainer, predictor = _explainer(booster, signature, x)
    assert explainer.method == "tree_shap"
    rows = _explain(explainer, x[:100])
    margins = margin(predictor, signature, x[:100])
    sums = np.array([r["base_value"] + sum(r["contributions"].values()) for r in rows])
    np.testing.assert_allclose(sums, margins, atol=5e-6)  # XGBoost adds up in float32
    native = booster.predict(xgboost.DMatrix(x[:100]), output_margin=True)
    np.testing.assert_allclose(margins, native, atol=5e-6)
