"""The prediction log: sampled rows land in Parquet (default) or JSON Lines files with
``pii`` inputs masked, and ``finmaas log export`` gives them back in one file. Real
servers log the rows a clean stop must keep and those of two workers; the app in
process shows masking, sampling and formats. Both close Parquet files every second
(``FINMAAS_PREDICTION_LOG_ROTATE_SECONDS=1``) so rows can be read while they run."""

from __future__ import annotations

import csv
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.datasets.german_credit import GERMAN_CREDIT_PII
from finmaas.monitoring.prediction_rows import REDACTED
from finmaas.monitoring.predictions import FLUSH_INTERVAL, log_files, read_log
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.registry import Registry
from finmaas.registry.records import ModelUpdate
from tests.integration.serving.homes import APPLICANT, copy_home, feature_tensors
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import LiveServer, start_server, stop_server
from tests.waiting import wait_until

PREDICT = "/v1/models/credit-risk:predict"


def _logged(settings: Settings, model: str = "credit-risk") -> list[dict[str, Any]]:
    """The rows of the readable files, in time order."""
    return list(read_log(log_files(settings.home / "predictions", model, None, None)))


def _start(
    settings: Settings, *extra: str, workers: int = 1, env: dict[str, str] | None = None
) -> LiveServer:
    env = {"FINMAAS_PREDICTION_LOG_ROTATE_SECONDS": "1", **(env or {})}
    return start_server(settings, "--access-log", "off", *extra, workers=workers, env=env)


def _start_in_process(settings: Settings, **overrides: Any) -> InProcessServer:
    return serve_in_process(settings, **{"prediction_log_rotate_seconds": 1, **overrides})


def _pid(path: Path) -> str:
    """The worker that wrote a file: ``<day>T<time>Z-<pid>[-n][-v<version>].<suffix>``."""
    return path.name.split("Z-", 1)[1].split("-")[0].split(".")[0]


@pytest.fixture(scope="module")
def logged_home(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return copy_home(
        served_home, tmp_path_factory.mktemp("prediction-log"), ModelUpdate(log_sample_rate=1.0)
    )


@pytest.fixture(scope="module")
def served(logged_home: Settings) -> dict[str, Any]:
    """Three rows over V1 and two over V2 at 100% sampling; the server is stopped after."""
    server: LiveServer = _start(logged_home)
    try:
        with server.client() as http:
            v1 = http.post(PREDICT, json={"instances": APPLICANT[:3]})
            v2 = http.post(
                "/v2/models/credit-risk/infer", json={"inputs": feature_tensors(APPLICANT[3:5])}
            )
            assert wait_until(lambda: len(_logged(logged_home)) == 5)
            metrics = http.get("/metrics").text
    finally:
        code = stop_server(server)
    return {"v1": v1, "v2": v2, "metrics": metrics, "code": code}


def test_every_sampled_row_is_logged_with_its_inputs_and_outputs(
    served: dict[str, Any], logged_home: Settings
) -> None:
    assert served["v1"].status_code == 200
    assert served["v2"].status_code == 200
    assert served["code"] == 0
    lines = _logged(logged_home)
    assert len(lines) == 5
    v1_id = served["v1"].headers["x-request-id"]
    v2_id = served["v2"].headers["x-request-id"]
    assert [(line["request_id"], line["row"]) for line in lines] == [
        (v1_id, 0),
        (v1_id, 1),
        (v1_id, 2),
        (v2_id, 0),
        (v2_id, 1),
    ]
    predictions = served["v1"].json()["predictions"]
    for line, applicant, prediction in zip(lines[:3], APPLICANT[:3], predictions, strict=True):
        assert line["model"] == "credit-risk"
        assert line["ts"].endswith("Z")
        assert line["outputs"]["label"] == prediction["label"]
        assert line["outputs"]["probability"] == pytest.approx(prediction["probability"])
        for name, value in applicant.items():
            if name not in GERMAN_CREDIT_PII:
                assert line["inputs"][name] == value, name  # raw values, not codes
    probabilities = next(o for o in served["v2"].json()["outputs"] if o["name"] == "probability")
    assert [line["outputs"]["probability"] for line in lines[3:]] == pytest.approx(
        probabilities["data"]
    )


def test_pii_inputs_are_written_as_keyed_hashes(
    served: dict[str, Any], logged_home: Settings
) -> None:
    key = (logged_home.home / "secrets" / "pseudonym.key").read_bytes()
    lines = _logged(logged_home)
    for line, applicant in zip(lines, APPLICANT, strict=False):
        assert line["inputs"]["age_in_years"] == pseudonym(key, str(applicant["age_in_years"]))
        assert line["inputs"]["personal_status_and_sex"] == pseudonym(
            key, applicant["personal_status_and_sex"]
        )
    stored = {value for line in lines for value in line["inputs"].values()}
    assert not stored & {applicant["personal_status_and_sex"] for applicant in APPLICANT}
    (path,) = log_files(logged_home.home / "predictions", "credit-risk", None, None)
    assert path.suffix == ".parquet"  # the default format


def test_the_counts_reach_metrics(served: dict[str, Any]) -> None:
    metrics = served["metrics"]
    assert 'finmaas_prediction_log_rows_total{model="credit-risk",outcome="written"} 5.0' in metrics
    assert "finmaas_prediction_log_backlog 0.0" in metrics


def test_sampling_is_off_by_default(served_app: InProcessServer) -> None:
    with served_app.client() as http:
        assert http.post(PREDICT, json={"instances": APPLICANT[:2]}).status_code == 200
    time.sleep(FLUSH_INTERVAL * 1.5)  # more than a flush interval
    assert not (served_app.settings.home / "predictions").exists()


def test_log_files_are_private_to_the_server_user(
    served: dict[str, Any], logged_home: Settings
) -> None:
    folder = logged_home.home / "predictions" / "credit-risk"
    assert folder.stat().st_mode & 0o077 == 0


def test_redact_masking_writes_a_placeholder(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = copy_home(
        served_home, tmp_path_factory.mktemp("redacted"), ModelUpdate(log_sample_rate=1.0)
    )
    server = _start_in_process(settings, pii_masking="redact")
    try:
        with server.client() as http:
            assert http.post(PREDICT, json={"instances": APPLICANT[:2]}).status_code == 200
    finally:
        server.close()
    lines = _logged(settings)
    assert len(lines) == 2
    for line, applicant in zip(lines, APPLICANT, strict=False):
        assert line["inputs"]["age_in_years"] == REDACTED
        assert line["inputs"]["personal_status_and_sex"] == REDACTED
        assert line["inputs"]["duration_in_month"] == applicant["duration_in_month"]


def test_sampling_keeps_about_the_rate_of_rows(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = copy_home(
        served_home, tmp_path_factory.mktemp("sampled"), ModelUpdate(log_sample_rate=0.25)
    )
    server = _start_in_process(settings)
    try:
        with server.client() as http:
            for _ in range(50):
                response = http.post(PREDICT, json={"instances": APPLICANT})
                assert response.status_code == 200
    finally:
        server.close()
    kept = len(_logged(settings))
    # 400 rows at 25%: 100 expected, sd 8.7; outside 50-150 has probability < 1e-8.
    assert 50 <= kept <= 150


def _export(settings: Settings, *args: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    code = main(["--home", str(settings.home), "log", "export", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_writes_the_rows_in_time_order(
    served: dict[str, Any],
    logged_home: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out.jsonl"
    code, out, err = _export(logged_home, "credit-risk", "--output", str(output), capsys=capsys)
    assert code == 0, err
    assert out == f"exported 5 logged row(s) of credit-risk from 1 file(s) to {output}\n"
    assert err == ""  # no file was left out
    rows = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert rows == _logged(logged_home)
    assert [row["ts"] for row in rows] == sorted(row["ts"] for row in rows)

    table = tmp_path / "out.csv"
    code, _, err = _export(
        logged_home,
        "credit-risk",
        "--version",
        "production",
        "--format",
        "csv",
        "-o",
        str(table),
        capsys=capsys,
    )
    assert code == 0, err
    with table.open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 5
    assert read[0]["inputs.purpose"] == APPLICANT[0]["purpose"]
    assert float(read[0]["outputs.probability"]) == pytest.approx(rows[0]["outputs"]["probability"])


def test_export_filters_by_day_and_version(
    served: dict[str, Any],
    logged_home: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "none.jsonl"
    code, out, _ = _export(
        logged_home, "credit-risk", "--until", "2000-01-02", "-o", str(output), capsys=capsys
    )
    assert code == 0
    assert out.startswith("exported 0 logged row(s) of credit-risk from 0 file(s)")
    assert output.read_bytes() == b""
    first = _logged(logged_home)[0]["version"]
    other = tmp_path / "other.jsonl"
    registry = Registry.open(logged_home)
    try:
        versions = [v.version for v in registry.list_versions("credit-risk")]
    finally:
        registry.close()
    unlogged = next(v for v in versions if v != first)  # the quickstart registers two
    code, out, _ = _export(
        logged_home, "credit-risk", "-v", str(unlogged), "-o", str(other), capsys=capsys
    )
    assert code == 0
    assert out.startswith("exported 0 logged row(s) of credit-risk from 1 file(s)")
    code, out, _ = _export(
        logged_home, "credit-risk", "-v", str(first), "-o", str(other), "--force", capsys=capsys
    )
    assert code == 0
    assert out.startswith("exported 5 logged row(s)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-model",), "error: model 'no-such-model' not found\n"),
        (
            ("credit-risk", "--since", "2026-13-01"),
            "error: --since: '2026-13-01' is not a date (YYYY-MM-DD)\n",
        ),
        (
            ("credit-risk", "--since", "2026-01-02", "--until", "2026-01-02"),
            "error: --until must be after --since\n",
        ),
    ],
)
def test_export_refuses_bad_arguments(
    served: dict[str, Any],
    logged_home: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = _export(logged_home, *args, "-o", str(tmp_path / "x.jsonl"), capsys=capsys)
    assert code == 1
    assert err == message
    assert not (tmp_path / "x.jsonl").exists()


def test_export_does_not_overwrite_without_force(
    served: dict[str, Any],
    logged_home: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "kept.jsonl"
    output.write_text("mine\n")
    code, _, err = _export(logged_home, "credit-risk", "-o", str(output), capsys=capsys)
    assert code == 1
    assert err == f"error: {str(output)!r} exists; pass --force to overwrite it\n"
    assert output.read_text() == "mine\n"
    code, _, _ = _export(logged_home, "credit-risk", "-o", str(output), "--force", capsys=capsys)
    assert code == 0
    assert len(output.read_bytes().splitlines()) == 5


def test_each_worker_writes_its_own_files_and_export_merges_them(
    served_home: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = copy_home(served_home, tmp_path, ModelUpdate(log_sample_rate=1.0))
    folder = settings.home / "predictions" / "credit-risk"
    server = _start(settings, workers=2)
    sent: list[str] = []

    def predict(index: int) -> str:
        with server.client() as http:  # a new connection: either worker may accept it
            response = http.post(
                PREDICT, json={"instances": APPLICANT[:1]}, headers={"x-request-id": f"r{index}"}
            )
            assert response.status_code == 200
            return str(response.headers["x-request-id"])

    try:
        with ThreadPoolExecutor(4) as pool:
            for start in range(0, 400, 40):  # until both workers have written (bounded)
                sent.extend(pool.map(predict, range(start, start + 40)))
                # Each worker writes every interval, if it was sent a request.
                if wait_until(
                    lambda: len({_pid(path) for path in folder.glob("*.parquet")}) == 2,
                    FLUSH_INTERVAL * 5,
                ):
                    break
    finally:
        assert stop_server(server) == 0  # a clean stop writes what was pending
    files = sorted(folder.glob("*.parquet"))
    assert len({_pid(path) for path in files}) == 2, [p.name for p in files]
    assert not list(folder.glob("*.part"))  # a clean stop closes every file
    assert sorted(row["request_id"] for row in _logged(settings)) == sorted(sent)

    output = tmp_path / "all.jsonl"
    code, out, err = _export(settings, "credit-risk", "-o", str(output), capsys=capsys)
    assert code == 0, err
    assert out == (
        f"exported {len(sent)} logged row(s) of credit-risk from {len(files)} file(s) to {output}\n"
    )
    stamps = [orjson.loads(line)["ts"] for line in output.read_bytes().splitlines()]
    assert stamps == sorted(stamps)


def test_json_lines_format_logs_the_same_rows(
    served: dict[str, Any], logged_home: Settings, tmp_path: Path
) -> None:
    settings = copy_home(logged_home, tmp_path, ModelUpdate(log_sample_rate=1.0))
    shutil.rmtree(settings.home / "predictions")
    server = _start_in_process(settings, prediction_log_format="jsonl")
    try:
        with server.client() as http:
            assert http.post(PREDICT, json={"instances": APPLICANT[:3]}).status_code == 200
            # A JSON Lines file is readable while the server runs.
            assert wait_until(lambda: len(_logged(settings)) == 3)
            lines = _logged(settings)
    finally:
        server.close()
    (path,) = log_files(settings.home / "predictions", "credit-risk", None, None)
    assert path.suffix == ".jsonl"
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == lines
    parquet = _logged(logged_home)[:3]
    assert [(line["inputs"], line["outputs"]) for line in lines] == [
        (line["inputs"], line["outputs"]) for line in parquet
    ]


def test_export_leaves_out_a_parquet_file_still_open_and_says_so(
    served_home: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = copy_home(served_home, tmp_path, ModelUpdate(log_sample_rate=1.0))
    folder = settings.home / "predictions" / "credit-risk"
    server = _start_in_process(settings, prediction_log_rotate_seconds=900)
    output = tmp_path / "out.jsonl"
    try:
        with server.client() as http:
            assert http.post(PREDICT, json={"instances": APPLICANT[:2]}).status_code == 200
            assert wait_until(lambda: list(folder.glob("*.parquet.part")))
        code, out, err = _export(settings, "credit-risk", "-o", str(output), capsys=capsys)
    finally:
        server.close()
    assert code == 0
    assert out == f"exported 0 logged row(s) of credit-risk from 0 file(s) to {output}\n"
    assert err == (
        "left out 1 Parquet file(s) still being written: a server closes its files every "
        "prediction_log_rotate_seconds and when it stops (a file of a worker that died "
        "without stopping stays unreadable)\n"
    )
    code, out, err = _export(settings, "credit-risk", "-o", str(output), "--force", capsys=capsys)
    assert (code, err) == (0, "")
    assert out == f"exported 2 logged row(s) of credit-risk from 1 file(s) to {output}\n"
