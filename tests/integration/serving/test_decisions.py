"""Decision records: what is kept and who may read it (the app in process), and that a
clean stop of a real server under load loses none."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.records import ModelUpdate
from finmaas.registry.tables import decisions
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import start_server, stop_server
from tests.waiting import wait_until

PREDICT = "/v1/models/credit-risk:predict"


@pytest.fixture(scope="module")
def home(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return copy_home(served_home, tmp_path_factory.mktemp("decisions"), ModelUpdate(decisions=True))


@pytest.fixture(scope="module")
def keys(home: Settings) -> dict[str, str]:
    registry = Registry.open(home)
    store = KeyStore(registry)

    def issue(name: str, role: str, **options: object) -> tuple[str, str]:
        issued = issue_key(store, name=name, role=role, actor="local:setup", **options)  # type: ignore[arg-type]
        return issued.token, issued.record.id

    try:
        app, app_id = issue("app", "consumer", grants=(parse_grant("credit-*:predict,explain"),))
        return {
            "app": app,
            "app_id": app_id,
            "auditor": issue("audit", "auditor")[0],
            "retail-auditor": issue("retail-audit", "auditor", tenant="retail")[0],
        }
    finally:
        registry.close()


@pytest.fixture(scope="module")
def server(home: Settings, keys: dict[str, str]) -> Iterator[InProcessServer]:
    served = serve_in_process(home, auth=True)
    try:
        yield served
    finally:
        served.close()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _find(http: httpx.Client, request_id: str, token: str) -> httpx.Response:
    """The decision once it is written (records are written in the background)."""
    responses: list[httpx.Response] = []

    def written() -> bool:
        responses.append(http.get(f"/api/decisions/{request_id}", headers=_bearer(token)))
        return responses[-1].status_code != 404

    wait_until(written, interval=0.1)
    return responses[-1]


def test_a_decision_is_recorded_with_a_pseudonym_and_reasons_and_found_again(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    with server.client() as http:
        served = http.post(
            PREDICT + "?explain=true&reasons=2",
            json={"instances": APPLICANT[:2]},
            headers={**_bearer(keys["app"]), "x-subject-id": "cust-1,cust-2"},
        )
        assert served.status_code == 200
        request_id = served.headers["x-request-id"]
        again = http.post(
            PREDICT,
            json={"instances": APPLICANT[:1]},
            headers={**_bearer(keys["app"]), "x-subject-id": "cust-1"},
        )
        found = _find(http, request_id, keys["auditor"])
        assert found.status_code == 200, found.text
        report = found.json()
        later = _find(http, again.headers["x-request-id"], keys["auditor"]).json()
    predictions = served.json()["predictions"]
    rows = report["decisions"]
    assert [r["row"] for r in rows] == [0, 1]
    for row, prediction in zip(rows, predictions, strict=True):
        assert row["probability"] == pytest.approx(prediction["probability"])
        assert "score" not in row  # V1's score is scorecard points; a record keeps no points
        assert row["decision"] == prediction["label"]
        assert (row["model"], row["alias"], row["key_id"]) == (
            "credit-risk",
            "production",
            keys["app_id"],
        )
        assert len(row["subject"]) == 32
        assert "cust" not in row["subject"]
        assert [r["feature"] for r in row["reasons"]] == [
            r["feature"] for r in prediction["explanation"]["reasons"]
        ]
        assert all("value" not in r for r in row["reasons"])  # no applicant values kept
    assert rows[0]["subject"] != rows[1]["subject"]
    assert later["decisions"][0]["subject"] == rows[0]["subject"]  # same subject, same pseudonym
    assert later["decisions"][0]["reasons"] is None
    ref = f"credit-risk@{rows[0]['version']}"
    assert report["explanations"][ref]["method"] == "tree_shap"


def test_only_auditors_of_the_models_tenant_find_decisions(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    with server.client() as http:
        served = http.post(PREDICT, json={"instances": APPLICANT[:1]}, headers=_bearer(keys["app"]))
        request_id = served.headers["x-request-id"]
        assert _find(http, request_id, keys["auditor"]).status_code == 200
        consumer = http.get(f"/api/decisions/{request_id}", headers=_bearer(keys["app"]))
        assert consumer.status_code == 403
        assert consumer.json() == {
            "error": "this needs the role auditor; the key's role is consumer"
        }
        other = http.get(f"/api/decisions/{request_id}", headers=_bearer(keys["retail-auditor"]))
        assert other.status_code == 404
        assert other.json() == {"error": f"no decision recorded for request id {request_id!r}"}
        bad = http.get("/api/decisions/bad%20id", headers=_bearer(keys["auditor"]))
        assert bad.status_code == 400
        assert bad.json() == {"error": "a request id is 1-64 letters, digits, '.', '_' or '-'"}


def test_a_subject_header_that_does_not_match_the_rows_is_refused(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    with server.client() as http:
        refused = http.post(
            PREDICT,
            json={"instances": APPLICANT[:3]},
            headers={**_bearer(keys["app"]), "x-subject-id": "a,b"},
        )
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "X-Subject-ID names 2 subject(s) but the request has 3 row(s); "
        "send one id per row, comma-separated"
    }


def test_a_clean_stop_under_load_loses_no_decision(served_home: Settings, tmp_path: object) -> None:
    home = copy_home(served_home, tmp_path, ModelUpdate(decisions=True))
    server = start_server(
        home, "--access-log", "off", workers=2, env={"FINMAAS_MAX_PENDING_DECISIONS": "20"}
    )
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post(PREDICT, json={"instances": APPLICANT[:4]})
                except httpx.TransportError:
                    return  # the server has stopped listening
                if response.status_code == 200:
                    with lock:
                        acknowledged.append((response.headers["x-request-id"], 4))

    threads = [threading.Thread(target=load) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        # Both workers load the model on their first request, slowly on a busy machine.
        assert wait_until(lambda: len(acknowledged) > 50, 120), len(acknowledged)
    finally:
        code = stop_server(server)  # SIGTERM while 8 clients keep sending
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
    assert code == 0
    registry = Registry.open(home)
    try:
        with registry.read() as conn:
            stored = conn.execute(
                sa.select(decisions.c.request_id, sa.func.count()).group_by(decisions.c.request_id)
            ).all()
    finally:
        registry.close()
    recorded = {request_id: count for request_id, count in stored}
    assert len(acknowledged) > 50
    missing = [rid for rid, rows in acknowledged if recorded.get(rid) != rows]
    assert missing == []
