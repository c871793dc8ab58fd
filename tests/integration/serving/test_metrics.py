"""GET /metrics: who may read it and what it counts (the app in process), and the sums
across the two workers of a real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.monitoring.store import DriftStore
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import start_server, stop_server
from tests.waiting import wait_until

PREDICT = "/v1/models/credit-risk:predict"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _requests(samples: Samples, model: str, status: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "finmaas_requests_total"
        and dict(labels)["model"] == model
        and dict(labels)["status"] == status
    )


@pytest.fixture(scope="module")
def home(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return copy_home(served_home, tmp_path_factory.mktemp("metrics"), keep_drift_counts=False)


@pytest.fixture(scope="module")
def keys(home: Settings) -> dict[str, str]:
    registry = Registry.open(home)
    store = KeyStore(registry)

    def issue(name: str, role: str, **options: object) -> str:
        return issue_key(store, name=name, role=role, actor="local:setup", **options).token  # type: ignore[arg-type]

    try:
        return {
            "admin": issue("root", "admin"),
            "auditor": issue("audit", "auditor"),
            "retail-auditor": issue("retail-audit", "auditor", tenant="retail"),
            "consumer": issue("app", "consumer", requests_per_minute=1),
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


def test_metrics_need_a_key_with_the_auditor_or_admin_role(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    with server.client() as http:
        assert http.get("/metrics").status_code == 401
        refused = http.get("/metrics", headers=_bearer(keys["consumer"]))
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "this needs the role auditor; the key's role is consumer"
        }
        allowed = http.get("/metrics", headers=_bearer(keys["auditor"]))
        assert allowed.status_code == 200
        assert allowed.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_requests_rejections_and_model_calls_are_counted(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    admin = _bearer(keys["admin"])
    with server.client() as http:
        before = _samples(http.get("/metrics", headers=admin).text)
        consumer = _bearer(keys["consumer"])
        statuses = [
            http.post(PREDICT, json={"instances": APPLICANT[:2]}, headers=consumer).status_code
            for _ in range(2)
        ]
        assert statuses == [200, 429]
        unknown = http.post(
            "/v1/models/no-such-model:predict", json={"instances": APPLICANT[:1]}, headers=admin
        )
        assert unknown.status_code == 404
        after = _samples(http.get("/metrics", headers=admin).text)
    assert _requests(after, "credit-risk", "200") - _requests(before, "credit-risk", "200") == 1
    assert _requests(after, "credit-risk", "429") - _requests(before, "credit-risk", "429") == 1
    # An unknown model's name never becomes a label value.
    assert _requests(after, "", "404") - _requests(before, "", "404") == 1
    assert not any("no-such-model" in str(labels) for _, labels in after)
    rejected = ("finmaas_rejections_total", (("model", "credit-risk"), ("reason", "requests")))
    assert after[rejected] - before.get(rejected, 0) == 1
    rows = [
        value
        for (name, labels), value in after.items()
        if name == "finmaas_batch_rows_sum" and ("kind", "predict") in labels
    ]
    assert sum(rows) >= 2


def test_an_auditor_sees_only_its_own_tenants_models(
    server: InProcessServer, keys: dict[str, str]
) -> None:
    with server.client() as http:
        http.post(PREDICT, json={"instances": APPLICANT[:1]}, headers=_bearer(keys["admin"]))
        own = http.get("/metrics", headers=_bearer(keys["auditor"])).text
        other = http.get("/metrics", headers=_bearer(keys["retail-auditor"])).text
    assert 'model="credit-risk"' in own
    assert 'model="credit-risk"' not in other
    assert "finmaas_workers 1.0" in other


def _shifted_bodies() -> list[bytes]:
    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET])
    frame["duration_in_month"] += 24
    records = frame.to_dict(orient="records")
    return [
        orjson.dumps({"instances": records[i : i + 50]}, option=orjson.OPT_SERIALIZE_NUMPY)
        for i in range(0, len(records), 50)
    ]


def _wait_for_stored_rows(home: Settings, rows: int) -> None:
    registry = Registry.open(home)
    try:
        version = registry.get_version("credit-risk", "production").version
        store = DriftStore(registry)
        today = datetime.now(UTC).date()

        def stored() -> bool:
            counts = store.window("credit-risk", version, today, today + timedelta(days=1))
            return sum(counts.get("duration_in_month", {}).values()) >= rows

        assert wait_until(stored, interval=0.2), f"the workers did not store {rows} rows"
    finally:
        registry.close()


def test_two_workers_add_up_and_drift_shows_as_gauges(
    served_home: Settings, tmp_path: Path
) -> None:
    home = copy_home(served_home, tmp_path, keep_drift_counts=False)
    server = start_server(home, "--access-log", "off", workers=2)
    try:
        bodies = _shifted_bodies()
        for body in bodies:  # a new connection each time, so both workers serve
            response = httpx.post(
                server.url + PREDICT,
                content=body,
                headers={"content-type": "application/json"},
                timeout=10,
            )
            assert response.status_code == 200
        # Workers store drift counts every 2 s: wait (bounded) until both have, however
        # busy the machine, before the first scrape (it caches drift for a minute).
        _wait_for_stored_rows(home, len(bodies) * 50)

        def published() -> bool:  # each worker publishes its counters every second
            samples = _samples(httpx.get(server.url + "/metrics", timeout=10).text)
            return _requests(samples, "credit-risk", "200") == len(bodies)

        assert wait_until(published, interval=0.2), "the workers' counters were not published"
        scrapes = [_samples(httpx.get(server.url + "/metrics", timeout=10).text) for _ in range(4)]
    finally:
        stop_server(server)
    for samples in scrapes:  # whichever worker answers, the sums are the same
        assert _requests(samples, "credit-risk", "200") == len(bodies)
        assert samples[("finmaas_workers", ())] == 2
    samples = scrapes[0]
    drift = {
        dict(labels)["feature"]: value
        for (name, labels), value in samples.items()
        if name == "finmaas_feature_csi"
    }
    assert drift["duration_in_month"] > 0.25
    assert drift["housing"] < 0.10
    rows = [value for (name, _), value in samples.items() if name == "finmaas_drift_rows"]
    assert rows == [1000]
    assert not list((home.home / "run").glob("metrics-*"))  # removed at a clean stop
