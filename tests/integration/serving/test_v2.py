"""Open Inference Protocol (V2): the app in process with plain httpx, and a real server
with tritonclient."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.serving.homes import APPLICANT, CATEGORY_FEATURES, feature_tensors
from tests.integration.serving.in_process import InProcessServer
from tests.integration.serving.live import LiveServer

INFER = "/v2/models/credit-risk/infer"


def _v1(client: httpx.Client, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(
        client.post("/v1/models/credit-risk:predict", json={"instances": rows}).json()[
            "predictions"
        ]
    )


def test_server_and_model_metadata(client: httpx.Client) -> None:
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data", "model_repository"]
    metadata = client.get("/v2/models/credit-risk").json()
    assert metadata["name"] == "credit-risk"
    assert metadata["platform"] == "finmaas_lightgbm"
    assert metadata["inputs"][0] == {
        "name": "status_of_existing_checking_account",
        "datatype": "BYTES",
        "shape": [-1],
    }
    assert {"name": "duration_in_month", "datatype": "INT64", "shape": [-1]} in metadata["inputs"]
    assert [o["name"] for o in metadata["outputs"]] == ["probability", "label", "score"]
    assert metadata["versions"] == ["1", "2"]  # every servable version, not only aliased ones
    assert client.get("/v2/models/credit-risk/versions/2/ready").json() == {
        "name": "credit-risk",
        "version": "2",
        "ready": True,
    }
    missing = client.get("/v2/models/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})


def test_json_feature_tensors_match_v1(client: httpx.Client) -> None:
    rows = APPLICANT[:3]
    response = client.post(INFER, json={"id": "req-7", "inputs": feature_tensors(rows)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("credit-risk", "1", "req-7")
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = _v1(client, rows)
    assert outputs["probability"]["data"] == [p["probability"] for p in expected]
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [3],
        "data": [p["label"] for p in expected],
    }


def test_requested_outputs_and_versions(client: httpx.Client) -> None:
    body = {"inputs": feature_tensors(APPLICANT[:1]), "outputs": [{"name": "label"}]}
    response = client.post("/v2/models/credit-risk/versions/2/infer", json=body).json()
    assert response["model_version"] == "2"
    assert [o["name"] for o in response["outputs"]] == ["label"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "request has no inputs"),
        (
            {"inputs": [{"name": "x", "datatype": "FP128", "shape": [1], "data": [1]}]},
            "input 'x': datatype 'FP128' is not one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, 2, 3]}]},
            "input 'x': shape [2] holds 2 elements but data has 3",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1.5]}]},
            "input 'x': 1.5 is not a valid INT32",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [300]}]},
            "input 'x': 300 is not a valid UINT8",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]},
            "input 'x': an encoded matrix must be FP32 or FP64 of shape [N, 20], got FP64 [1, 3]",
        ),
        (
            {"inputs": feature_tensors(APPLICANT[:1])[1:]},
            "missing input 'status_of_existing_checking_account'",
        ),
        (
            {
                "inputs": [
                    *feature_tensors(APPLICANT[:1]),
                    {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["red"]},
                ]
            },
            "unknown input 'colour'",
        ),
        (
            {"inputs": feature_tensors(APPLICANT[:1]), "outputs": [{"name": "reasons"}]},
            "requested output 'reasons' is not one of: probability, label, score",
        ),
        (
            {"inputs": feature_tensors(APPLICANT[:1]), "model_name": "credit-risk"},
            "unknown field 'model_name' in the request body; allowed: id, inputs, outputs, "
            "parameters",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1], "dims": [1]}]},
            "unknown field 'dims' in input 'x'; allowed: data, datatype, name, parameters, shape",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "parameters": [1]}]},
            "input 'x': 'parameters' must be an object",
        ),
        (
            {
                "inputs": feature_tensors(APPLICANT[:1]),
                "outputs": [{"name": "label", "binary": True}],
            },
            "unknown field 'binary' in output 'label'; allowed: name, parameters",
        ),
        (
            {
                "inputs": feature_tensors(APPLICANT[:1]),
                "outputs": [{"name": "label", "parameters": 1}],
            },
            "output 'label': 'parameters' must be an object",
        ),
    ],
)
def test_bad_v2_requests(client: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = client.post(INFER, json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_encoded_matrix_layout(client: httpx.Client, served_app: InProcessServer) -> None:
    from finmaas.registry import Registry
    from finmaas.schema import RecordEncoder

    registry = Registry.open(served_app.settings)
    signature = registry.get_version("credit-risk", 1).signature
    registry.close()
    matrix = RecordEncoder(signature).encode(APPLICANT[:2])
    body = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 20], "data": matrix.tolist()}]
    }
    outputs = {o["name"]: o["data"] for o in client.post(INFER, json=body).json()["outputs"]}
    assert outputs["probability"] == [p["probability"] for p in _v1(client, APPLICANT[:2])]
    bad = matrix.copy()
    bad[0, 0] = 7.0  # status_of_existing_checking_account has 4 categories
    response = client.post(
        INFER,
        json={
            "inputs": [
                {"name": "input", "datatype": "FP64", "shape": [2, 20], "data": bad.tolist()}
            ]
        },
    )
    assert response.json() == {
        "error": "field 'status_of_existing_checking_account' must be a category index from 0 to 3"
    }


def test_tritonclient_binary_and_json(live_server: LiveServer, live_client: httpx.Client) -> None:
    import tritonclient.http as triton

    rows = APPLICANT[:4]
    expected = np.array([p["probability"] for p in _v1(live_client, rows)])
    triton_client = triton.InferenceServerClient(live_server.url.removeprefix("http://"))
    try:
        assert triton_client.is_server_live()
        assert triton_client.is_model_ready("credit-risk")
        for binary in (True, False):
            inputs = []
            for name in rows[0]:
                if name in CATEGORY_FEATURES:
                    array = np.array([row[name].encode() for row in rows], dtype=np.object_)
                    tensor = triton.InferInput(name, [len(rows)], "BYTES")
                else:
                    array = np.array([row[name] for row in rows], dtype=np.int64)
                    tensor = triton.InferInput(name, [len(rows)], "INT64")
                tensor.set_data_from_numpy(array, binary_data=binary)
                inputs.append(tensor)
            outputs = [
                triton.InferRequestedOutput("probability", binary_data=binary),
                triton.InferRequestedOutput("label", binary_data=binary),
            ]
            result = triton_client.infer("credit-risk", inputs, outputs=outputs, request_id="t-1")
            np.testing.assert_allclose(result.as_numpy("probability"), expected, rtol=0, atol=1e-12)
            labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
            assert labels == [p["label"] for p in _v1(live_client, rows)]
            assert result.get_response()["id"] == "t-1"
    finally:
        triton_client.close()


def test_an_alias_or_a_version_in_the_query_picks_the_version(client: httpx.Client) -> None:
    body = {"inputs": feature_tensors(APPLICANT[:1])}
    assert client.post(INFER, params={"version": "2"}, json=body).json()["model_version"] == "2"
    picked = client.post(INFER, params={"alias": "production"}, json=body)
    assert picked.json()["model_version"] == "1"
    metadata = client.get("/v2/models/credit-risk", params={"version": "2"})
    assert metadata.json()["versions"] == ["1", "2"]
    assert client.get("/v2/models/credit-risk/ready", params={"version": "2"}).json() == {
        "name": "credit-risk",
        "version": "2",
        "ready": True,
    }
    for path, params, status, message in [
        (INFER, {"alias": "staging"}, 404, "model 'credit-risk' has no alias 'staging'"),
        (INFER, {"alias": "x", "version": "1"}, 400, "give either 'version' or 'alias', not both"),
        (
            "/v2/models/credit-risk/versions/2/infer",
            {"alias": "production"},
            400,
            "give either 'version' or 'alias', not both",
        ),
        (INFER, {"v": "1"}, 400, "unknown query parameter 'v'; use 'version' or 'alias'"),
    ]:
        refused = client.post(path, params=params, json=body)
        assert (refused.status_code, refused.json()) == (status, {"error": message}), params


def test_repository_extension(client: httpx.Client) -> None:
    assert client.post("/v2/repository/models/credit-risk/load").status_code == 200
    index = client.post("/v2/repository/index").json()
    assert {"name": "credit-risk", "version": "1", "state": "READY"} in index
    # every servable version is listed, loaded or not
    assert [entry["version"] for entry in index if entry["name"] == "credit-risk"] == ["1", "2"]
    assert client.post("/v2/repository/models/credit-risk/unload").status_code == 200
    assert [
        (entry["version"], entry["state"], entry["reason"])
        for entry in client.post("/v2/repository/index").json()
        if entry["name"] == "credit-risk"
    ] == [
        ("1", "UNAVAILABLE", "unloaded from this server"),
        ("2", "UNAVAILABLE", "unloaded from this server"),
    ]
    missing = client.post("/v2/repository/models/nope/unload")
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
    unloaded = client.post(INFER, json={"inputs": feature_tensors(APPLICANT[:1])})
    assert (unloaded.status_code, unloaded.json()) == (
        503,
        {
            "error": "model 'credit-risk' is unloaded from this server; "
            "POST /v2/repository/models/credit-risk/load serves it again"
        },
    )  # as in Triton: unloaded until loaded, never reloaded behind the client's back
    assert client.get("/v2/models/credit-risk/ready").status_code == 503
    assert client.post("/v2/repository/models/credit-risk/load").status_code == 200
    assert client.get("/v2/models/credit-risk/ready").status_code == 200
    assert client.post(INFER, json={"inputs": feature_tensors(APPLICANT[:1])}).status_code == 200
