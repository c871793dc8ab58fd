"""A version whose stored artifact fails its sha256 check answers 503 with the reason
on every protocol: a fault of this server's copy that a client can retry elsewhere
(issue 18, item 7)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from finmaas.config import Settings
from finmaas.registry import LocalArtifactStore, Registry
from tests.integration.serving.homes import APPLICANT, copy_home, feature_tensors
from tests.integration.serving.in_process import serve_in_process


@pytest.fixture(scope="module")
def corrupted(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, str]]:
    settings = copy_home(served_home, tmp_path_factory.mktemp("corrupted"))
    registry = Registry.open(settings)
    try:
        digest = registry.get_version("credit-risk", 2).artifact_digest
    finally:
        registry.close()
    path: Path = LocalArtifactStore(settings.resolved_artifacts_dir).path_of(digest)
    path.write_bytes(b"tampered")
    server = serve_in_process(settings, serve_model="credit-risk@2")
    try:
        with server.client() as http:
            yield http, digest
    finally:
        server.close()


def _reason(digest: str) -> str:
    actual = hashlib.sha256(b"tampered").hexdigest()
    return (
        f"artifact sha256:{digest} is corrupted: its bytes hash to sha256:{actual}; "
        "refusing to load it"
    )


def test_v1_answers_503_with_the_reason(corrupted: tuple[httpx.Client, str]) -> None:
    http, digest = corrupted
    response = http.post(
        "/v1/models/credit-risk:predict", params={"version": "2"}, json={"instances": APPLICANT[:1]}
    )
    assert response.status_code == 503
    assert response.json() == {"error": _reason(digest)}


def test_v2_answers_503_with_the_reason(corrupted: tuple[httpx.Client, str]) -> None:
    http, digest = corrupted
    body = {"inputs": feature_tensors(APPLICANT[:1])}
    response = http.post("/v2/models/credit-risk/versions/2/infer", json=body)
    assert response.status_code == 503
    assert response.json() == {"error": _reason(digest)}


def test_mlflow_answers_503_with_the_reason(corrupted: tuple[httpx.Client, str]) -> None:
    http, digest = corrupted
    response = http.post("/invocations", json={"instances": APPLICANT[:1]})
    assert response.status_code == 503
    assert response.json() == {"error_code": "TEMPORARILY_UNAVAILABLE", "message": _reason(digest)}


def test_an_intact_version_still_serves(corrupted: tuple[httpx.Client, str]) -> None:
    http, _ = corrupted
    response = http.post(
        "/v1/models/credit-risk:predict", params={"version": "1"}, json={"instances": APPLICANT[:1]}
    )
    assert response.status_code == 200
