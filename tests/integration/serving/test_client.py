"""The Python SDK against the app in process (through its ``transport``), and against
no server at all."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from finmaas import Client
from finmaas.errors import Invalid, NotFound, Unavailable
from tests.integration.serving.homes import APPLICANT
from tests.integration.serving.in_process import InProcessServer
from tests.integration.serving.live import free_port


def _sdk(server: InProcessServer) -> Client:
    return Client(server.url, transport=server.transport())


def test_predict_metadata_and_listing(served_app: InProcessServer, client: httpx.Client) -> None:
    with _sdk(served_app) as sdk:
        assert sdk.ready()
        assert sdk.models() == ["credit-risk"]
        result = sdk.predict("credit-risk", APPLICANT[:2])
        expected = client.post(
            "/v1/models/credit-risk:predict", json={"instances": APPLICANT[:2]}
        ).json()
        assert (result.model_name, result.model_version) == ("credit-risk", 1)
        assert result.predictions == expected["predictions"]
        assert sdk.predict("credit-risk", APPLICANT[:1], version=2).model_version == 2
        assert sdk.predict("credit-risk", APPLICANT[:1], alias="production").model_version == 1
        outputs = sdk.predict_v2(
            "credit-risk", {k: [r[k] for r in APPLICANT[:2]] for k in APPLICANT[0]}
        )
        np.testing.assert_allclose(
            outputs["probability"], [p["probability"] for p in result.predictions]
        )
        assert list(outputs["label"]) == [p["label"] for p in result.predictions]
        assert [i["name"] for i in sdk.metadata("credit-risk")["inputs"]][:2] == [
            "status_of_existing_checking_account",
            "duration_in_month",
        ]


def test_predict_v2_takes_records_like_predict_and_an_alias_or_a_version(
    served_app: InProcessServer,
) -> None:
    """Issue 21: records raised AttributeError, and there was no ``alias=``."""
    with _sdk(served_app) as sdk:
        expected = sdk.predict("credit-risk", APPLICANT[:3]).predictions
        outputs = sdk.predict_v2("credit-risk", APPLICANT[:3])
        np.testing.assert_allclose(outputs["probability"], [p["probability"] for p in expected])
        assert list(outputs["label"]) == [p["label"] for p in expected]
        staged = sdk.predict("credit-risk", APPLICANT[:1], version=2).predictions
        by_version = sdk.predict_v2("credit-risk", APPLICANT[:1], version=2)
        assert by_version["probability"].tolist() == [staged[0]["probability"]]
        by_alias = sdk.predict_v2("credit-risk", APPLICANT[:1], alias="production")
        assert by_alias["probability"].tolist() == [expected[0]["probability"]]
        with pytest.raises(NotFound) as missing:
            sdk.predict_v2("credit-risk", APPLICANT[:1], alias="staging")
        assert str(missing.value) == "model 'credit-risk' has no alias 'staging'"
        with pytest.raises(Invalid) as both:
            sdk.predict_v2("credit-risk", APPLICANT[:1], alias="production", version=1)
        assert str(both.value) == "give either 'version' or 'alias', not both"
        with pytest.raises(Invalid) as short:
            sdk.predict_v2("credit-risk", [APPLICANT[0], {"purpose": "car (new)"}])
        assert str(short.value) == (
            "row 1: null is not allowed for field 'status_of_existing_checking_account'"
        )
        with pytest.raises(Invalid) as not_records:
            sdk.predict_v2("credit-risk", ["a row"])  # type: ignore[list-item]
        assert str(not_records.value) == (
            "row 0: a record must be a mapping of feature name to value, got str"
        )


def test_errors_are_typed(served_app: InProcessServer) -> None:
    with _sdk(served_app) as sdk:
        with pytest.raises(NotFound) as missing:
            sdk.predict("nope", APPLICANT[:1])
        assert str(missing.value) == "model 'nope' not found"
        with pytest.raises(Invalid) as bad:
            sdk.predict("credit-risk", [{**APPLICANT[0], "purpose": "boat"}])
        assert (
            str(bad.value) == "row 0: field 'purpose' must be one of its 10 categories, got 'boat'"
        )
        with pytest.raises(Invalid) as both:
            sdk.predict("credit-risk", APPLICANT[:1], alias="production", version=1)
        assert str(both.value) == "give either 'version' or 'alias', not both"


def test_unreachable_server() -> None:
    port = free_port()
    with Client(f"http://127.0.0.1:{port}", timeout=1) as sdk:
        assert not sdk.ready()
        with pytest.raises(Unavailable) as err:
            sdk.predict("credit-risk", APPLICANT[:1])
        assert str(err.value).startswith(f"cannot reach http://127.0.0.1:{port}: ")


def test_explain(served_app: InProcessServer) -> None:
    with _sdk(served_app) as sdk:
        result = sdk.explain("credit-risk", APPLICANT[:2], reasons=3)
        plain = sdk.predict("credit-risk", APPLICANT[:2])
        with pytest.raises(Invalid) as caught:
            sdk.explain("credit-risk", APPLICANT[:1], reasons=99)
    assert result.model_version == plain.model_version
    for explained, prediction in zip(result.predictions, plain.predictions, strict=True):
        assert explained["probability"] == prediction["probability"]
        explanation = explained["explanation"]
        assert len(explanation["reasons"]) <= 3
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["output"], abs=1e-6)
    assert str(caught.value) == "reasons must be a whole number from 1 to 20, got 99"
