"""Drift: live counts from the two workers of a real server, stored, surviving a restart;
the report's window checked with the app in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.registry import Registry
from tests.integration.serving.homes import copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import LiveServer, start_server, stop_server
from tests.waiting import wait_until

PREDICT = "/v1/models/credit-risk:predict"


def _applicants(shift: int) -> list[bytes]:
    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET])
    frame["duration_in_month"] += shift
    records = frame.to_dict(orient="records")
    return [
        orjson.dumps({"instances": records[i : i + 100]}, option=orjson.OPT_SERIALIZE_NUMPY)
        for i in range(0, len(records), 100)
    ]


def _drift(server: LiveServer, version: int, rows: int, **params: str) -> dict[str, Any]:
    """The drift report once it counts ``rows`` rows (the workers publish their counts
    now and then), or the last one seen after a generous wait."""
    reports: list[dict[str, Any]] = []

    def counted() -> bool:
        with server.client() as http:
            response = http.get(f"/api/models/credit-risk/versions/{version}/drift", params=params)
        assert response.status_code == 200, response.text
        reports.append(response.json())
        return bool(reports[-1]["rows"] >= rows)

    wait_until(counted, interval=0.3)
    return reports[-1]


@pytest.fixture
def home(served_home: Settings, tmp_path: Path) -> Settings:
    """A copy of the served home without the counts other tests' traffic left in it."""
    return copy_home(served_home, tmp_path, keep_drift_counts=False)


def _production(settings: Settings) -> int:
    registry = Registry.open(settings)
    try:
        return registry.get_version("credit-risk", "production").version
    finally:
        registry.close()


def test_a_shifted_input_alerts_and_the_counts_survive_a_restart(
    home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    version = _production(home)
    server = start_server(home, workers=2)
    try:
        with server.client() as http:
            for body in _applicants(shift=24) * 2:  # 2,000 rows with longer loans
                response = http.post(
                    PREDICT, content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == 200
        report = _drift(server, version, 2000)
    finally:
        assert stop_server(server) == 0
    assert report["rows"] == 2000  # both workers' counts, added up
    features = {f["name"]: f for f in report["features"]}
    assert features["duration_in_month"]["band"] == "alert"
    assert features["duration_in_month"]["index"] >= 0.25
    assert features["duration_in_month"]["p_value"] < 1e-6
    assert report["features"][0]["name"] == "duration_in_month"  # largest first
    for name, entry in features.items():
        if name != "duration_in_month":
            assert entry["index"] < 0.10, name
    assert report["score"]["name"] == "__score__"
    shares = [b["live"] for b in features["credit_amount"]["bins"]]
    assert sum(shares) == pytest.approx(1.0)

    restarted = start_server(home)
    try:
        again = _drift(restarted, version, 2000)
        assert again["rows"] == 2000  # stored: a restart keeps the window
        with restarted.client() as http:
            response = http.post(
                PREDICT,
                content=_applicants(shift=0)[0],
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 200
        assert _drift(restarted, version, 2100)["rows"] == 2100
    finally:
        stop_server(restarted)

    code = main(["--home", str(home.home), "drift", "credit-risk", "--window", "2d"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"credit-risk@{version}: 2100 served rows from " in out
    assert "duration_in_month" in out
    assert "alert" in out


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "x"}, "window must be a number of days from 1d to 366d, got 'x'"),
        ({"window": "400d"}, "window must be a number of days from 1d to 366d, got '400d'"),
        (
            {"window": "7d", "since": "2026-01-01"},
            "give either a window (like 7d) or since/until dates, not both",
        ),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "'since' must be before 'until'"),
        ({"since": "yesterday"}, "'since' must be a date (YYYY-MM-DD)"),
        ({"days": "7"}, "unknown query parameter 'days'"),
    ],
)
def test_bad_windows(served_app: InProcessServer, params: dict[str, str], message: str) -> None:
    with served_app.client() as http:
        response = http.get("/api/models/credit-risk/versions/1/drift", params=params)
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_an_empty_window(served_app: InProcessServer) -> None:
    with served_app.client() as http:
        report = http.get(
            "/api/models/credit-risk/versions/1/drift",
            params={"since": "2001-01-01", "until": "2001-01-08"},
        ).json()
    assert (report["rows"], report["since"], report["until"]) == (0, "2001-01-01", "2001-01-08")
    assert all(f["index"] is None and f["band"] is None for f in report["features"])


def test_a_few_rows_give_no_drift_figure_anywhere(
    home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: two rows gave a PSI of 6.8. Below ``drift_min_rows`` (100) the report
    says so, and the metrics have no PSI or CSI series for the version."""
    version = _production(home)
    records = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).head(2)
    body = orjson.dumps({"instances": records.to_dict(orient="records")})
    server = serve_in_process(home)
    try:
        with server.client() as http:
            response = http.post(
                PREDICT, content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200
            path = f"/api/models/credit-risk/versions/{version}/drift"

            def stored() -> bool:  # the worker stores its counts every 2 s
                return bool(http.get(path).json()["rows"] >= 2)

            wait_until(stored, interval=0.2)
            report = http.get(path).json()
            scrape = http.get("/metrics").text
    finally:
        server.close()
    note = (
        "not enough rows (2 of 100): no drift index below 100 served rows "
        "(the drift_min_rows setting)"
    )
    assert (report["rows"], report["min_rows"], report["note"]) == (2, 100, note)
    for entry in [report["score"], *report["features"]]:
        assert (entry["index"], entry["band"], entry["p_value"]) == (None, None, None)
        assert entry["rows"] == 2
    assert f'finmaas_drift_rows{{model="credit-risk",version="{version}"}} 2.0' in scrape
    assert "finmaas_score_psi{" not in scrape
    assert "finmaas_feature_csi{" not in scrape

    code = main(["--home", str(home.home), "drift", "credit-risk"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1:] == [note]
