"""MLflow scoring protocol, the app in process: the four input formats and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from finmaas import __version__
from finmaas.config import Settings
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process


@pytest.fixture(scope="module")
def mlflow_server(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    home = copy_home(served_home, tmp_path_factory.mktemp("mlflow"))
    server = serve_in_process(home, serve_model="credit-risk@production")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http(mlflow_server: InProcessServer) -> Iterator[httpx.Client]:
    with mlflow_server.client() as client:
        yield client


def _expected(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.post("/v1/models/credit-risk:predict", json={"instances": APPLICANT[:3]})
    return list(response.json()["predictions"])


def test_every_input_format_gives_the_same_predictions(http: httpx.Client) -> None:
    expected = _expected(http)
    columns = list(APPLICANT[0])
    bodies = [
        {"dataframe_records": APPLICANT[:3]},
        {
            "dataframe_split": {
                "columns": columns,
                "data": [[a[c] for c in columns] for a in APPLICANT[:3]],
            }
        },
        {"instances": APPLICANT[:3]},
        {"inputs": {c: [a[c] for a in APPLICANT[:3]] for c in columns}},
        {"inputs": [list(a.values()) for a in APPLICANT[:3]]},
    ]
    for body in bodies:
        response = http.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}


def test_header_chooses_another_version(http: httpx.Client) -> None:
    response = http.post(
        "/invocations",
        json={"instances": APPLICANT[:1]},
        headers={"X-Finmaas-Model": "credit-risk@2"},
    )
    assert response.status_code == 200
    version2 = http.post(
        "/v1/models/credit-risk:predict", params={"version": "2"}, json={"instances": APPLICANT[:1]}
    )
    assert response.json()["predictions"] == version2.json()["predictions"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"records": []},
            "unknown field 'records' in the request body; allowed: dataframe_records, "
            "dataframe_split, inputs, instances, params",
        ),
        (
            {},
            "request body must have exactly one of: dataframe_records, dataframe_split, instances, inputs",
        ),
        (
            {"instances": [], "inputs": []},
            "request body must have exactly one of: dataframe_records, dataframe_split, instances, inputs",
        ),
        ({"dataframe_records": []}, "'dataframe_records' holds no rows"),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
            "dataframe_split row 0 must be a list of 1 values",
        ),
        (
            {"inputs": {"a": [1], "b": [1, 2]}},
            "'inputs' as an object must map each column to a list of equal length",
        ),
        (
            {"dataframe_records": [{"purpose": "car"}]},
            "row 0: missing field 'status_of_existing_checking_account'",
        ),
    ],
)
def test_bad_bodies(http: httpx.Client, body: Any, message: str) -> None:
    response = http.post("/invocations", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"error_code": "BAD_REQUEST", "message": message},
    )


def test_unknown_model_in_header(http: httpx.Client) -> None:
    response = http.post(
        "/invocations", json={"instances": APPLICANT[:1]}, headers={"X-Finmaas-Model": "nope"}
    )
    assert (response.status_code, response.json()) == (
        404,
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "model 'nope' not found"},
    )


def test_ping_health_version(http: httpx.Client) -> None:
    assert http.get("/ping").status_code == 200
    assert http.get("/health").status_code == 200
    assert http.get("/version").text == __version__


def test_no_model_chosen(client: httpx.Client) -> None:
    response = client.post("/invocations", json={"instances": APPLICANT[:1]})
    assert (response.status_code, response.json()) == (
        400,
        {
            "error_code": "BAD_REQUEST",
            "message": "no model chosen: start finmaas serve with --model NAME[@alias] or send the X-Finmaas-Model header",
        },
    )
