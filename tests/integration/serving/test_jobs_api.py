"""``/api/jobs`` with the app in process, and the SDK's ``train`` and ``wait_job``: a job
started from an upload runs in its own worker process and registers its version."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finmaas import datasets
from finmaas.client import Client
from finmaas.config import Settings
from finmaas.datasets.headlines import generated_headlines
from finmaas.jobs.runner import UPLOADS
from tests.integration.serving.homes import copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process


@pytest.fixture(scope="module")
def server(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    served = serve_in_process(copy_home(served_home, tmp_path_factory.mktemp("jobs")))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture(scope="module")
def headlines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "news.csv"
    generated_headlines(240, seed=5).to_csv(path, index=False)
    return path


def _body(path: Path, **changes: Any) -> dict[str, Any]:
    body = {
        "template": "sentiment",
        "data": base64.b64encode(path.read_bytes()).decode(),
        "filename": path.name,
        "options": {"name": "news-api", "folds": 3},
    }
    return {**body, **changes}


def test_a_job_started_over_http_registers_its_version(
    server: InProcessServer, headlines: Path
) -> None:
    with server.client() as http:
        started = http.post("/api/jobs", json=_body(headlines))
        assert started.status_code == 201, started.text
        job = started.json()
        assert (job["template"], job["state"]) == ("sentiment", "queued")
        assert job["options"]["data"].endswith("/news.csv")  # kept under the server's home
        deadline = time.monotonic() + 180  # training, on a busy machine
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = http.get(f"/api/jobs/{job['id']}").json()
        assert job["state"] == "succeeded", job
        assert job["versions"][0]["model"] == "news-api"
        assert job["log"][-1] == "done"
        # The upload may hold personal data: the worker deletes it when the job ends.
        assert not Path(job["options"]["data"]).exists()
        listed = http.get("/api/jobs").json()["jobs"]
        assert job["id"] in [j["id"] for j in listed]
        card = http.get("/api/models/news-api/versions/1/card")
        assert card.text.startswith("# Model card: news-api\n")
        unknown = http.get("/api/jobs/nope")
        assert (unknown.status_code, unknown.json()) == (404, {"error": "no job 'nope'"})


def test_the_sdk_trains_and_waits(server: InProcessServer, headlines: Path) -> None:
    with Client(server.url, transport=server.transport()) as client:
        job = client.train("sentiment", headlines, name="news-sdk", folds=3)
        done = client.wait_job(job["id"], timeout=180, poll=0.2)
        assert done["state"] == "succeeded", done
        assert done["versions"][0]["staging"] is True
        assert client.job(job["id"])["id"] == job["id"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"template": "regression"},
            "'template' must be one of credit, forecast, sentiment, optimize",
        ),
        ({"data": ""}, "'data' is required: the CSV or Parquet file, base64-encoded"),
        ({"data": "not base64!"}, "'data' is not valid base64"),
        (
            {"filename": "../etc/passwd"},
            "'filename' must be 1-100 letters, digits, '.', '_' or '-'",
        ),
        (
            {"options": {"name": "n", "data": "/etc/passwd"}},
            "'options.data' is not allowed: the file travels in 'data'",
        ),
        (
            {"options": {"folds": 3}},
            "'options.name' is required: the model to register the versions under",
        ),
        (
            {"options": {"name": "n", "epochs": 3}},
            "unknown option 'epochs' for the sentiment template",
        ),
        (
            {"extra": 1},
            "unknown field 'extra'; allowed: data, filename, options, template",
        ),
    ],
)
def test_bad_job_requests_are_refused(
    server: InProcessServer, headlines: Path, changes: dict[str, Any], message: str
) -> None:
    with server.client() as http:
        response = http.post("/api/jobs", json=_body(headlines, **changes))
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_job_routes_refuse_other_methods(server: InProcessServer) -> None:
    with server.client() as http:
        response = http.delete("/api/jobs")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "no route for DELETE /api/jobs"},
    )


def test_the_sdk_optimizes_a_version_and_a_refused_request_keeps_no_upload(
    server: InProcessServer,
) -> None:
    german = Path(datasets.__file__).with_name("germancredit.csv")
    with Client(server.url, transport=server.transport()) as client:
        job = client.optimize(
            "credit-risk", 1, "distill", german, target="creditability", trees=10, neighbours=2
        )
        assert job["template"] == "optimize"
        done = client.wait_job(job["id"], timeout=180, poll=0.2)
        assert done["state"] == "succeeded", done
        (listed,) = done["versions"]
        assert (listed["model"], listed["parent"], listed["candidate"]) == (
            "credit-risk",
            "credit-risk@1",
            "distill",
        )
        assert listed["report"].startswith(f"| | credit-risk@1 | credit-risk@{listed['version']} |")
    uploads = server.settings.home / UPLOADS
    before = sorted(uploads.iterdir())
    with server.client() as http:
        body = _body(german, template="optimize")
        body["options"] = {"name": "credit-risk", "version": 1, "method": "quantize"}
        response = http.post("/api/jobs", json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "int8 and float16 quantisation need an ONNX network; credit-risk@1 is lightgbm."
    )
    assert sorted(uploads.iterdir()) == before  # the refused upload was deleted


def test_the_sdk_passes_a_speed_gate_and_a_bad_one_is_refused(server: InProcessServer) -> None:
    german = Path(datasets.__file__).with_name("germancredit.csv")
    with Client(server.url, transport=server.transport()) as client:
        job = client.optimize(
            "credit-risk",
            1,
            "distill",
            german,
            target="creditability",
            trees=10,
            neighbours=2,
            min_speedup=1e9,  # no child is a billion times faster: always refused
        )
        assert job["options"]["min_speedup"] == 1e9
        done = client.wait_job(job["id"], timeout=60, poll=0.2)
    assert done["state"] == "failed", done
    assert done["versions"] == []
    assert done["error"].startswith("speed gate not met: the child serves ")
    assert done["error"].endswith(
        " less than the ×1e+09 asked (min_speedup); no version was registered"
    )
    with server.client() as http:
        for value, message in (
            (0, "min_speedup must be a number > 0, got 0"),
            ("fast", "option 'min_speedup' must be a number, got 'fast'"),
        ):
            body = _body(german, template="optimize")
            body["options"] = {
                "name": "credit-risk",
                "version": 1,
                "method": "distill",
                "min_speedup": value,
            }
            response = http.post("/api/jobs", json=body)
            assert response.status_code == 400, response.text
            assert response.json() == {"error": message}
