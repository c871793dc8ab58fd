"""X-Request-ID and the JSON access log, over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.live import start_server, stop_server

PREDICT = "/v1/models/credit-risk:predict"
BODY = {"instances": APPLICANT[:2]}


def _home(served_home: Settings, tmp_path: Path) -> tuple[Settings, str]:
    settings = copy_home(served_home, tmp_path)
    registry = Registry.open(settings)
    try:
        token = issue_key(KeyStore(registry), name="app", role="consumer", actor="local:t").token
    finally:
        registry.close()
    return settings, token


def _lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]


def test_request_ids_and_one_json_line_per_request(served_home: Settings, tmp_path: Path) -> None:
    settings, token = _home(served_home, tmp_path)
    auth = {"authorization": f"Bearer {token}"}
    server = start_server(settings, auth=True)
    try:
        with server.client() as http:
            given = http.post(PREDICT, json=BODY, headers={**auth, "x-request-id": "loan-42.a_b"})
            invalid = http.post(PREDICT, json=BODY, headers={**auth, "x-request-id": "bad id!"})
            missing = http.post(PREDICT, json=BODY)
            probe = http.get("/v2/health/ready")
    finally:
        assert stop_server(server) == 0
    assert given.headers["x-request-id"] == "loan-42.a_b"
    generated = [r.headers["x-request-id"] for r in (invalid, missing, probe)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in generated)
    assert len(set(generated)) == 3

    log = next(settings.home.parent.glob("server-*.log")).read_text()
    assert token not in log
    lines = {line["request_id"]: line for line in _lines(log)}
    first = lines["loan-42.a_b"]
    assert set(first) == {
        "ts",
        "request_id",
        "method",
        "path",
        "status",
        "ms",
        "key_id",
        "model",
        "version",
    }
    assert (first["method"], first["path"], first["status"]) == ("POST", PREDICT, 200)
    assert (first["key_id"], first["model"]) == (token[4:20], "credit-risk")
    assert isinstance(first["version"], int)
    assert first["ms"] > 0
    assert first["ts"].endswith("Z")
    refused = lines[missing.headers["x-request-id"]]
    assert (refused["status"], refused["key_id"], refused["model"]) == (401, None, None)
    assert lines[probe.headers["x-request-id"]]["path"] == "/v2/health/ready"


def test_the_access_log_goes_to_a_file_or_nowhere(served_home: Settings, tmp_path: Path) -> None:
    settings, _ = _home(served_home, tmp_path)
    target = tmp_path / "access.jsonl"
    for setting in (str(target), "off"):
        server = start_server(settings, "--access-log", setting)
        try:
            with server.client() as http:
                for _ in range(3):
                    assert http.post(PREDICT, json=BODY).status_code == 200
        finally:
            stop_server(server)
    written = _lines(target.read_text())
    assert [line["status"] for line in written if line["path"] == PREDICT] == [200, 200, 200]
    log = "".join(p.read_text() for p in settings.home.parent.glob("server-*.log"))
    assert _lines(log) == []  # neither run wrote access lines to its output
