"""``:explain`` and ``:predict?explain=true``, the app in process, on the quickstart's models."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sklearn.neural_network import MLPClassifier

from finmaas.actor import Actor
from finmaas.client import Client
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.publish.publishing import publish_bytes
from finmaas.publish.registration import serialise_model
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import encode_frame
from tests.integration.serving.homes import APPLICANT, feature_tensors
from tests.integration.serving.in_process import InProcessServer, serve_in_process

EXPLAIN = "/v1/models/credit-risk:explain"
PREDICT = "/v1/models/credit-risk:predict"
BODY = {"instances": APPLICANT[:3]}


@pytest.fixture(scope="module")
def server(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    copy = tmp_path_factory.mktemp("explain") / "home"
    shutil.copytree(served_home.home, copy)
    settings = Settings(home=copy)
    frame = load_german_credit()
    features = frame.drop(columns=[GERMAN_CREDIT_TARGET])
    signature = german_credit_signature()
    x = encode_frame(signature, features)
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").astype(int).to_numpy()
    network = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(x, y)
    registry = Registry.open(settings)
    try:
        for name, sample in (("mlp-risk", features), ("mlp-bare", None)):
            publish_bytes(
                registry,
                LocalArtifactStore(settings.resolved_artifacts_dir),
                name,
                serialise_model(network).data,
                filename="mlp.skops",
                signature=signature,
                actor=Actor("local:t"),
                reference_sample=sample,
            )
    finally:
        registry.close()
    served = serve_in_process(settings)
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def http(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _check_explanation(prediction: dict[str, Any], reasons: int) -> None:
    explanation = prediction["explanation"]
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(explanation["output"], abs=1e-6)
    probability = 1 / (1 + math.exp(-explanation["output"]))
    assert probability == pytest.approx(prediction["probability"], abs=1e-6)
    assert explanation["exact"] is True
    assert explanation["reference"] == "sample"
    assert len(explanation["contributions"]) == 20
    found = explanation["reasons"]
    assert len(found) <= reasons
    contributions = [r["contribution"] for r in found]
    assert contributions == sorted(contributions, reverse=True)
    assert all(c > 0 for c in contributions)
    for reason in found:
        assert reason["contribution"] == explanation["contributions"][reason["feature"]]
        assert reason["text"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_explain_returns_predictions_with_additive_explanations(
    http: httpx.Client, version: str
) -> None:
    explained = http.post(EXPLAIN, params={"version": version}, json=BODY)
    assert explained.status_code == 200, explained.text
    predicted = http.post(PREDICT, params={"version": version}, json=BODY).json()
    body = explained.json()
    assert (body["model_name"], body["model_version"]) == ("credit-risk", version)
    for with_reasons, plain in zip(body["predictions"], predicted["predictions"], strict=True):
        assert {k: with_reasons[k] for k in plain} == plain
        _check_explanation(with_reasons, 4)
    methods = {p["explanation"]["method"] for p in body["predictions"]}
    assert len(methods) == 1
    assert methods <= {"tree_shap", "additive"}


def test_predict_with_explain_true_and_a_reason_count(http: httpx.Client) -> None:
    response = http.post(PREDICT, params={"explain": "true", "reasons": "2"}, json=BODY)
    assert response.status_code == 200, response.text
    for prediction in response.json()["predictions"]:
        _check_explanation(prediction, 2)
    plain = http.post(PREDICT, json=BODY).json()["predictions"]
    assert all("explanation" not in p for p in plain)


def test_a_reason_value_is_what_the_applicant_sent(http: httpx.Client) -> None:
    response = http.post(EXPLAIN, params={"reasons": "20"}, json={"instances": APPLICANT[:1]})
    [prediction] = response.json()["predictions"]
    for reason in prediction["explanation"]["reasons"]:
        assert reason["value"] == APPLICANT[0][reason["feature"]]


@pytest.mark.parametrize(
    ("path", "params", "body", "status", "message"),
    [
        (
            EXPLAIN,
            {"reasons": "21"},
            BODY,
            400,
            "reasons must be a whole number from 1 to 20, got 21",
        ),
        (
            EXPLAIN,
            {"reasons": "0"},
            BODY,
            400,
            "reasons must be a whole number from 1 to 20, got 0",
        ),
        (
            EXPLAIN,
            {},
            {"instances": [{k: v for k, v in APPLICANT[0].items() if k != "purpose"}]},
            400,
            "row 0: missing field 'purpose'",
        ),
        (
            EXPLAIN,
            {},
            {"rows": []},
            400,
            "unknown field 'rows' in the request body; allowed: inputs, instances",
        ),
        (EXPLAIN, {"version": "9"}, BODY, 404, "model 'credit-risk' has no version 9"),
        (
            "/v1/models/mlp-bare:explain",
            {"version": "1"},
            BODY,
            501,
            "model 'mlp-bare' version 1 (skops) has no explanation profile: publish it with a "
            "reference sample (--reference) to explain it",
        ),
        (
            "/v1/models/mlp-bare:predict",
            {"explain": "true", "version": "1"},
            BODY,
            501,
            "model 'mlp-bare' version 1 (skops) has no explanation profile: publish it with a "
            "reference sample (--reference) to explain it",
        ),
    ],
)
def test_explain_refusals(
    http: httpx.Client,
    path: str,
    params: dict[str, str],
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    response = http.post(path, params=params, json=body)
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_a_model_without_a_method_still_predicts(http: httpx.Client) -> None:
    response = http.post("/v1/models/mlp-bare:predict", params={"version": "1"}, json=BODY)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 3


def test_a_neural_network_is_explained_by_sampling(http: httpx.Client) -> None:
    response = http.post("/v1/models/mlp-risk:explain", params={"version": "1"}, json=BODY)
    assert response.status_code == 200, response.text
    for prediction in response.json()["predictions"]:
        explanation = prediction["explanation"]
        assert (explanation["method"], explanation["exact"]) == ("sampled", False)
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["output"], abs=1e-6)
        probability = 1 / (1 + math.exp(-explanation["output"]))
        assert probability == pytest.approx(prediction["probability"], abs=1e-6)


INFER = "/v2/models/credit-risk/infer"


def test_v2_explain_parameter_adds_explanation_outputs(http: httpx.Client) -> None:
    body = {
        "inputs": feature_tensors(APPLICANT[:3]),
        "parameters": {"explain": True, "reasons": 2},
    }
    response = http.post(INFER, json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert set(outputs) == {
        "probability",
        "label",
        "score",
        "contributions",
        "base_value",
        "explanation",
    }
    assert outputs["contributions"]["shape"] == [3, 20]
    assert outputs["contributions"]["datatype"] == "FP64"
    contributions = outputs["contributions"]["data"]
    for row in range(3):
        explanation = orjson.loads(outputs["explanation"]["data"][row])
        assert len(explanation["reasons"]) <= 2
        total = outputs["base_value"]["data"][row] + sum(contributions[row * 20 : (row + 1) * 20])
        assert total == pytest.approx(explanation["output"], abs=1e-6)
        probability = 1 / (1 + math.exp(-explanation["output"]))
        assert probability == pytest.approx(outputs["probability"]["data"][row], abs=1e-6)
    plain = http.post(INFER, json={"inputs": feature_tensors(APPLICANT[:3])}).json()
    assert {o["name"] for o in plain["outputs"]} == {"probability", "label", "score"}


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"explain": "yes"}, "parameter 'explain' must be true or false"),
        ({"explain": True, "reasons": "2"}, "parameter 'reasons' must be a whole number"),
        ({"reasons": 2}, "parameter 'reasons' applies to explanations: add \"explain\": true"),
        (
            {"counterfactual": True},
            "parameter 'counterfactual' applies to explanations: add \"explain\": true",
        ),
        (
            {"explain": True, "counterfactual": 1},
            "parameter 'counterfactual' must be true or false",
        ),
        ({"explain": True, "reasons": 30}, "reasons must be a whole number from 1 to 20, got 30"),
    ],
)
def test_v2_explain_refusals(http: httpx.Client, parameters: dict[str, Any], message: str) -> None:
    body = {"inputs": feature_tensors(APPLICANT[:1]), "parameters": parameters}
    response = http.post(INFER, json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_the_global_view_ranks_inputs_by_mean_absolute_contribution(http: httpx.Client) -> None:
    for version in (1, 2):
        response = http.get(f"/api/models/credit-risk/versions/{version}/explanation")
        assert response.status_code == 200, response.text
        view = response.json()
        assert (view["model"], view["version"], view["reference"]) == (
            "credit-risk",
            version,
            "sample",
        )
        assert view["method"] in ("tree_shap", "additive")
        ranked = [item["mean_abs_contribution"] for item in view["global_importance"]]
        assert len(ranked) == 20
        assert ranked == sorted(ranked, reverse=True)
        assert ranked[0] > 0
        assert view["reason_texts"]["duration_in_month"] == "Duration in month"
    missing = http.get("/api/models/mlp-bare/versions/1/explanation")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "mlp-bare@1 has no explanation profile"},
    )
    sampled = http.get("/api/models/mlp-risk/versions/1/explanation").json()
    assert sampled["method"] == "sampled"
    unknown = http.get("/api/models/credit-risk/versions/9/explanation")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "model 'credit-risk' has no version 9"},
    )


def test_counterfactuals_over_http(http: httpx.Client) -> None:
    applicants = {"instances": APPLICANT}
    response = http.post(EXPLAIN, params={"counterfactual": "true"}, json=applicants)
    assert response.status_code == 200, response.text
    found = 0
    for prediction in response.json()["predictions"]:
        counterfactual = prediction["explanation"]["counterfactual"]
        if prediction["label"] == "good":
            assert counterfactual == {"needed": False}
            continue
        assert counterfactual["needed"] is True
        if counterfactual["found"]:
            found += 1
            assert counterfactual["probability"] < prediction["probability"]
            assert 1 <= len(counterfactual["changes"]) <= 2
            assert "age_in_years" not in {c["feature"] for c in counterfactual["changes"]}
    assert found >= 1
    plain = http.post(EXPLAIN, json=applicants).json()["predictions"]
    assert all("counterfactual" not in p["explanation"] for p in plain)


def test_v2_counterfactual_output(http: httpx.Client) -> None:
    body = {
        "inputs": feature_tensors(APPLICANT),
        "parameters": {"explain": True, "counterfactual": True},
    }
    response = http.post(INFER, json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["counterfactual"]["shape"] == [len(APPLICANT)]
    assert outputs["counterfactual"]["datatype"] == "BYTES"
    for label, text in zip(
        outputs["label"]["data"], outputs["counterfactual"]["data"], strict=True
    ):
        counterfactual = orjson.loads(text)
        assert counterfactual["needed"] is (label == "bad")


def test_every_version_has_a_model_card_served_as_markdown(
    http: httpx.Client, server: InProcessServer
) -> None:
    response = http.get("/api/models/credit-risk/versions/1/card")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    card = response.text
    assert card.startswith("# Model card: credit-risk\n")
    for section in ("Intended use", "Data", "Features", "Metrics", "Fairness", "Limitations"):
        assert f"\n## {section}\n" in card
    assert "| `duration_in_month` | int |" in card
    assert "| `age_in_years` | int |" in card
    assert "pii: masked in logs" in card
    assert "| auc | 0." in card
    # A version pushed without training facts still gets a card, saying what is missing.
    pushed = http.get("/api/models/mlp-bare/versions/1/card").text
    assert "## Metrics\n\nNot recorded for this version." in pushed
    unknown = http.get("/api/models/credit-risk/versions/9/card")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "model 'credit-risk' has no version 9"},
    )
    with Client(server.url, transport=server.transport()) as client:
        assert client.model_card("credit-risk", 1) == card
