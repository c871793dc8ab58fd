"""KServe V1, the app in process: predictions, version selection, and every bad input."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.integration.serving.homes import APPLICANT

PREDICT = "/v1/models/credit-risk:predict"


def test_predict_one_applicant(client: httpx.Client) -> None:
    response = client.post(PREDICT, json={"instances": APPLICANT[:1]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "credit-risk"
    assert body["model_version"] == "1"
    [prediction] = body["predictions"]
    assert set(prediction) == {"probability", "label", "score"}
    assert 0 < prediction["probability"] < 1
    assert prediction["label"] in {"good", "bad"}
    assert isinstance(prediction["score"], float)


def test_batch_equals_single_rows(client: httpx.Client) -> None:
    batch = client.post(PREDICT, json={"instances": APPLICANT}).json()["predictions"]
    singles = [
        client.post(PREDICT, json={"instances": [a]}).json()["predictions"][0] for a in APPLICANT
    ]
    assert batch == singles


def test_positional_records_and_inputs_key(client: httpx.Client) -> None:
    by_name = client.post(PREDICT, json={"instances": APPLICANT[:2]}).json()["predictions"]
    positional = [list(a.values()) for a in APPLICANT[:2]]
    assert client.post(PREDICT, json={"inputs": positional}).json()["predictions"] == by_name


def test_version_and_alias_selection(client: httpx.Client) -> None:
    assert (
        client.post(PREDICT, params={"version": "2"}, json={"instances": APPLICANT[:1]}).json()[
            "model_version"
        ]
        == "2"
    )
    assert (
        client.post(
            PREDICT, params={"alias": "production"}, json={"instances": APPLICANT[:1]}
        ).json()["model_version"]
        == "1"
    )
    status = client.get("/v1/models/credit-risk")
    assert status.json() == {"name": "credit-risk", "version": "1", "ready": True}


def _with(**changes: Any) -> dict[str, Any]:
    return {**APPLICANT[0], **changes}


def _without(field: str) -> dict[str, Any]:
    return {k: v for k, v in APPLICANT[0].items() if k != field}


BAD_REQUESTS = [
    ({"instances": [_without("purpose")]}, 400, "row 0: missing field 'purpose'"),
    ({"instances": [_with(colour="red")]}, 400, "row 0: unknown field 'colour'"),
    (
        {"instances": [_with(credit_amount="lots")]},
        400,
        "row 0: field 'credit_amount' must be a number, got string 'lots'",
    ),
    (
        {"instances": [_with(purpose="boat")]},
        400,
        "row 0: field 'purpose' must be one of its 10 categories, got 'boat'",
    ),
    (
        {"instances": [_with(duration_in_month=-3)]},
        400,
        "row 0: field 'duration_in_month' must be ≥ 0, got -3",
    ),
    (
        {"instances": [_with(age_in_years=12)]},
        400,
        "row 0: field 'age_in_years' must be ≥ 18, got a value not shown (the field is PII)",
    ),
    ({"instances": [_with(housing=None)]}, 400, "row 0: null is not allowed for field 'housing'"),
    (
        {"instances": [_with(duration_in_month=1.5)]},
        400,
        "row 0: field 'duration_in_month' must be an integer, got number 1.5",
    ),
    (
        {"instances": [_with(purpose="x" * 100_000)]},
        400,
        f"row 0: field 'purpose' must be one of its 10 categories, got '{'x' * 63}…'",
    ),
    (
        {"instances": [{**APPLICANT[0], "y" * 100_000: 1}]},
        400,
        f"row 0: unknown field '{'y' * 63}…'",
    ),
    ({"instances": []}, 400, "'instances' is empty; send at least one record"),
    ({"instances": APPLICANT[:1] * 5000}, 400, "request has 5000 rows; the limit is 4096"),
    ({}, 400, "request body must have 'instances' (a list of records)"),
    (
        {"rows": APPLICANT[:1]},
        400,
        "unknown field 'rows' in the request body; allowed: inputs, instances",
    ),
    (
        {"instances": APPLICANT[:1], "signature_name": "x"},
        400,
        "unknown field 'signature_name' in the request body; allowed: inputs, instances",
    ),
    (
        {"instances": APPLICANT[:1], "inputs": APPLICANT[:1]},
        400,
        "request body must have one of 'instances' or 'inputs', not both",
    ),
    ([1, 2], 400, "request body must be a JSON object with 'instances'"),
    (
        {"instances": [[1, 2]]},
        400,
        "row 0: a list record needs 20 values in signature order, got 2",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
def test_bad_requests(client: httpx.Client, body: Any, status: int, message: str) -> None:
    response = client.post(PREDICT, json=body)
    assert (response.status_code, response.json()) == (status, {"error": message})


NON_FINITE = (
    "NaN and Infinity are not numbers JSON allows; send null for a missing value "
    "(accepted where the signature marks the field nullable)"
)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        (b"NaN", NON_FINITE),
        (b"nan", NON_FINITE),
        (b"Infinity", NON_FINITE),
        (b"-Infinity", NON_FINITE),
        (b"1e999", "row 0: field 'duration_in_month' must be a finite number, got number 1e999"),
        (b"6,", None),
    ],
)
def test_non_finite_and_malformed_json(
    client: httpx.Client, literal: bytes, message: str | None
) -> None:
    raw = orjson.dumps({"instances": APPLICANT[:1]}).replace(
        b'"duration_in_month":6', b'"duration_in_month":' + literal
    )
    response = client.post(PREDICT, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    if message is None:
        assert response.json()["error"].startswith("malformed JSON: ")
    else:
        assert response.json() == {"error": message}


def test_truncated_json(client: httpx.Client) -> None:
    response = client.post(PREDICT, content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON: ")


def test_json_nested_too_deep(client: httpx.Client) -> None:
    deep = b'{"instances": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = client.post(PREDICT, content=deep, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (
        400,
        {"error": "JSON is nested deeper than 1024 levels"},
    )
    nested = {"instances": [{**APPLICANT[0], "duration_in_month": [[[6]]]}]}
    response = client.post(PREDICT, json=nested)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "row 0: field 'duration_in_month' must be a number, got a list"},
    )


def test_wrong_content_type(client: httpx.Client) -> None:
    response = client.post(PREDICT, content=b"a,b", headers={"content-type": "text/csv"})
    assert (response.status_code, response.json()) == (
        415,
        {"error": "content type 'text/csv' is not supported; send application/json"},
    )


def test_body_too_large(client: httpx.Client) -> None:
    response = client.post(
        PREDICT, content=b"x" * (8 * 1024 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": f"request body is {8 * 1024 * 1024 + 1} bytes; the limit is {8 * 1024 * 1024}"
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/v1/models/nope:predict", {}, 404, "model 'nope' not found"),
        (PREDICT, {"alias": "staging"}, 404, "model 'credit-risk' has no alias 'staging'"),
        (PREDICT, {"version": "9"}, 404, "model 'credit-risk' has no version 9"),
        (PREDICT, {"version": "x"}, 400, "version must be a positive integer, got 'x'"),
        (
            PREDICT,
            {"version": "1", "alias": "production"},
            400,
            "give either 'version' or 'alias', not both",
        ),
        (
            PREDICT,
            {"colour": "red"},
            400,
            "unknown query parameter 'colour'; use alias, counterfactual, explain, reasons, version",
        ),
        (
            "/v1/models/credit-risk:explain",
            {"explain": "true"},
            400,
            "unknown query parameter 'explain'; use alias, counterfactual, reasons, version",
        ),
        (PREDICT, {"explain": "yes"}, 400, "'explain' must be true or false, got 'yes'"),
        (
            PREDICT,
            {"explain": "true", "reasons": "-1"},
            400,
            "'reasons' must be a whole number, got '-1'",
        ),
        (
            PREDICT,
            {"reasons": "2"},
            400,
            "'reasons' applies to explanations: add explain=true or call :explain",
        ),
        (
            PREDICT,
            {"counterfactual": "true"},
            400,
            "'counterfactual' applies to explanations: add explain=true or call :explain",
        ),
        (
            "/v1/models/credit-risk:explain",
            {"counterfactual": "maybe"},
            400,
            "'counterfactual' must be true or false, got 'maybe'",
        ),
    ],
)
def test_selection_errors(
    client: httpx.Client, path: str, params: dict[str, str], status: int, message: str
) -> None:
    response = client.post(path, params=params, json={"instances": APPLICANT[:1]})
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_unknown_route(client: httpx.Client) -> None:
    response = client.get("/v3/anything")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "no route for GET /v3/anything"},
    )


def test_health(client: httpx.Client) -> None:
    # The protocol tests serve with --insecure-no-auth, which every probe admits to.
    note = {"auth": "disabled (--insecure-no-auth)"}
    assert client.get("/v2/health/live").json() == {"live": True, **note}
    assert client.get("/v2/health/ready").json() == {"ready": True, **note}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/v1/models/..%2F..%2Fetc%2Fpasswd:predict",
            "no route for POST /v1/models/../../etc/passwd:predict",
        ),
        ("/v1/models/credit%0Arisk:predict", "model 'credit\\nrisk' not found"),
        ("/v1/models/..:predict", "model '..' not found"),
    ],
)
def test_model_names_from_the_path_never_reach_the_file_system(
    client: httpx.Client, path: str, message: str
) -> None:
    response = client.post(path, json={"instances": APPLICANT[:1]})
    assert (response.status_code, response.json()) == (404, {"error": message})
