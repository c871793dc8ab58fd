"""Keys, roles, grants, limits, metering and the control plane: the app in process, and
a real server where its start, its log or SIGTERM is the point.

The test names follow the OWASP API Security Top 10 (2023) items that apply:
API1 broken object-level authorisation, API2 broken authentication, API3
broken object-property-level authorisation, API4 unrestricted resource
consumption, API5 broken function-level authorisation, API8 security
misconfiguration.
"""

from __future__ import annotations

import base64
import pickle
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from finmaas.client import Client
from finmaas.config import Settings
from finmaas.errors import Unauthenticated
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.usage import UsageStore
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant
from tests.integration.serving.homes import APPLICANT
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import start_server, stop_server
from tests.waiting import wait_until

PREDICT = "/v1/models/credit-risk:predict"
BODY = {"instances": APPLICANT[:2]}
NOT_FOUND = {"error": "model 'credit-risk' not found"}


class Keys(dict[str, str]):
    def auth(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self[name]}"}


def _issue(store: KeyStore, name: str, role: str, **options: object) -> str:
    return issue_key(store, name=name, role=role, actor="local:setup", **options).token  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def home(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    copy = tmp_path_factory.mktemp("secured") / "home"
    shutil.copytree(served_home.home, copy)
    return Settings(home=copy)


@pytest.fixture(scope="module")
def keys(home: Settings) -> Keys:
    registry = Registry.open(home)
    store = KeyStore(registry)
    grant = parse_grant("credit-risk:predict,metadata")
    try:
        return Keys(
            admin=_issue(store, "root", "admin"),
            consumer=_issue(store, "retail-app", "consumer", tenant="retail", grants=(grant,)),
            outsider=_issue(store, "other-app", "consumer", tenant="other"),
            reader=_issue(
                store,
                "reader",
                "consumer",
                tenant="retail",
                grants=(parse_grant("credit-risk:metadata"),),
            ),
            auditor=_issue(store, "auditor", "auditor", tenant="retail"),
            developer=_issue(store, "dev", "developer"),
            retail_developer=_issue(store, "retail-dev", "developer", tenant="retail"),
            validator=_issue(store, "val", "validator"),
            limited=_issue(store, "limited", "consumer", requests_per_minute=5),
            rows=_issue(store, "rows", "consumer", rows_per_minute=4),
            quota=_issue(store, "quota", "consumer", monthly_quota=3),
            expiring=_issue(
                store, "expiring", "consumer", expires_at=datetime.now(UTC) + timedelta(seconds=4)
            ),
        )
    finally:
        registry.close()


@pytest.fixture(scope="module")
def server(home: Settings, keys: Keys) -> Iterator[InProcessServer]:
    served = serve_in_process(home, auth=True)
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def http(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# -- API2: broken authentication ----------------------------------------------------


def test_api2_a_request_without_a_key_is_401_with_www_authenticate(http: httpx.Client) -> None:
    response = http.post(PREDICT, json=BODY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="finmaas"'
    assert response.json() == {
        "error": "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"authorization": "Bearer fmk_0123456789abcdef_nope"}, "invalid API key"),
        ({"authorization": "Bearer not-a-key"}, "invalid API key"),
        ({"x-api-key": "fmk_0123456789abcdef_nope"}, "invalid API key"),
        (
            {"authorization": "Basic dXNlcjpwYXNz"},
            "unsupported authorization scheme: use 'Bearer <key>'",
        ),
    ],
)
def test_api2_bad_keys_are_401(http: httpx.Client, header: dict[str, str], message: str) -> None:
    response = http.post(PREDICT, json=BODY, headers=header)
    assert (response.status_code, response.json()) == (401, {"error": message})
    assert response.headers["www-authenticate"] == 'Bearer realm="finmaas"'


def test_api2_a_key_with_a_changed_secret_is_refused(http: httpx.Client, keys: Keys) -> None:
    token = keys["consumer"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = http.post(PREDICT, json=BODY, headers={"authorization": f"Bearer {tampered}"})
    assert (response.status_code, response.json()) == (401, {"error": "invalid API key"})


def test_api2_x_api_key_header_works(http: httpx.Client, keys: Keys) -> None:
    response = http.post(PREDICT, json=BODY, headers={"x-api-key": keys["consumer"]})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


def test_api2_revocation_reaches_the_running_server(http: httpx.Client, home: Settings) -> None:
    """A new key is accepted and a revoked one refused without a restart. How stale the
    server's keys may be is the refresh interval (0.5 s, ``test_guard`` and
    ``test_background``); a loaded machine may take longer to run a refresh, so the test
    waits for the outcome, not for a wall-clock figure."""
    registry = Registry.open(home)
    try:
        store = KeyStore(registry)
        token = _issue(store, "short-lived", "consumer")
        auth = {"authorization": f"Bearer {token}"}
        assert wait_until(lambda: http.post(PREDICT, json=BODY, headers=auth).status_code == 200)
        store.revoke(token[4:20], actor="local:setup")
        assert wait_until(lambda: http.post(PREDICT, json=BODY, headers=auth).status_code == 401)
        response = http.post(PREDICT, json=BODY, headers=auth)
        assert (response.status_code, response.json()) == (401, {"error": "API key was revoked"})
    finally:
        registry.close()


def test_api2_an_expired_key_is_refused(http: httpx.Client, keys: Keys) -> None:
    auth = keys.auth("expiring")  # for 4 s after the module's keys were issued
    assert wait_until(
        lambda: http.post(PREDICT, json=BODY, headers=auth).status_code != 200, interval=0.2
    )
    response = http.post(PREDICT, json=BODY, headers=auth)
    assert (response.status_code, response.json()) == (401, {"error": "API key has expired"})


# -- API1: broken object-level authorisation -------------------------------------------


def test_api1_a_granted_consumer_of_another_tenant_may_predict(
    http: httpx.Client, keys: Keys
) -> None:
    response = http.post(PREDICT, json=BODY, headers=keys.auth("consumer"))
    assert response.status_code == 200


def test_api1_a_model_the_key_cannot_see_answers_like_an_unknown_one(
    http: httpx.Client, keys: Keys
) -> None:
    hidden = http.post(PREDICT, json=BODY, headers=keys.auth("outsider"))
    unknown = http.post(
        "/v1/models/no-such-model:predict", json=BODY, headers=keys.auth("outsider")
    )
    assert (hidden.status_code, hidden.json()) == (404, NOT_FOUND)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "model 'no-such-model' not found"},
    )
    v2 = http.get("/v2/models/credit-risk", headers=keys.auth("outsider"))
    assert (v2.status_code, v2.json()) == (404, NOT_FOUND)
    listing = http.get("/v1/models", headers=keys.auth("outsider"))
    assert listing.json() == {"models": []}
    assert http.get("/v1/models", headers=keys.auth("consumer")).json() == {
        "models": ["credit-risk"]
    }


def test_api1_a_key_without_the_verb_gets_403(http: httpx.Client, keys: Keys) -> None:
    response = http.post(PREDICT, json=BODY, headers=keys.auth("reader"))
    assert (response.status_code, response.json()) == (
        403,
        {"error": "this key may not predict model 'credit-risk'"},
    )
    assert http.get("/v1/models/credit-risk", headers=keys.auth("reader")).status_code == 200


def test_api1_explanations_need_the_explain_verb(http: httpx.Client, keys: Keys) -> None:
    no_explain = keys.auth("consumer")  # granted predict and metadata only
    for path, params in (
        ("/v1/models/credit-risk:explain", {}),
        (PREDICT, {"explain": "true"}),
    ):
        response = http.post(path, params=params, json=BODY, headers=no_explain)
        assert (response.status_code, response.json()) == (
            403,
            {"error": "this key may not explain model 'credit-risk'"},
        )
    explained = http.post(
        "/v1/models/credit-risk:explain", json=BODY, headers=keys.auth("developer")
    )
    assert explained.status_code == 200
    assert "explanation" in explained.json()["predictions"][0]


def test_api1_a_tenant_sees_only_its_own_keys(http: httpx.Client, keys: Keys) -> None:
    listed = http.get("/api/keys", headers=keys.auth("auditor")).json()["keys"]
    assert {key["tenant"] for key in listed} == {"retail"}
    assert {key["name"] for key in listed} == {"retail-app", "reader", "auditor", "retail-dev"}
    other_tenant = keys["outsider"][4:20]
    response = http.get(f"/api/keys/{other_tenant}", headers=keys.auth("auditor"))
    assert (response.status_code, response.json()) == (
        404,
        {"error": f"key {other_tenant!r} not found"},
    )


# -- API3: broken object-property-level authorisation -----------------------------------


def test_api3_key_records_never_carry_the_secret_or_its_hash(
    http: httpx.Client, keys: Keys
) -> None:
    listed = http.get("/api/keys", headers=keys.auth("admin"))
    assert listed.status_code == 200
    text = listed.text
    assert "secret_hash" not in text
    for token in keys.values():
        assert token not in text
        assert token.split("_", 2)[2] not in text


def test_api3_unknown_fields_in_a_key_request_are_refused(http: httpx.Client, keys: Keys) -> None:
    response = http.post(
        "/api/keys",
        json={"name": "sneaky", "role": "consumer", "secret_hash": "0" * 64},
        headers=keys.auth("admin"),
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("unknown field 'secret_hash'; allowed: ")


# -- API4: unrestricted resource consumption -------------------------------------------


def test_api4_requests_per_minute_limit_is_429_with_headers(http: httpx.Client, keys: Keys) -> None:
    statuses = [
        http.post(PREDICT, json=BODY, headers=keys.auth("limited")).status_code for _ in range(5)
    ]
    assert statuses == [200] * 5
    refused = http.post(PREDICT, json=BODY, headers=keys.auth("limited"))
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "rate limit exceeded: this key may send 5 requests per minute"
    }
    assert 1 <= int(refused.headers["retry-after"]) <= 12
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-policy"] == "5;w=60"


def test_api4_rows_per_minute_limit(http: httpx.Client, keys: Keys) -> None:
    auth = keys.auth("rows")
    assert http.post(PREDICT, json={"instances": APPLICANT[:3]}, headers=auth).status_code == 200
    refused = http.post(PREDICT, json={"instances": APPLICANT[:2]}, headers=auth)
    assert (refused.status_code, refused.json()) == (
        429,
        {"error": "rate limit exceeded: this key may send 4 rows per minute"},
    )
    too_big = http.post(PREDICT, json={"instances": APPLICANT[:5]}, headers=auth)
    assert (too_big.status_code, too_big.json()["error"]) == (
        429,
        "request has 5 rows but this key may send at most 4 rows per minute; split it",
    )


def test_api4_monthly_quota_names_the_quota_and_its_reset(http: httpx.Client, keys: Keys) -> None:
    auth = keys.auth("quota")
    assert http.post(PREDICT, json={"instances": APPLICANT[:2]}, headers=auth).status_code == 200
    refused = http.post(PREDICT, json={"instances": APPLICANT[:2]}, headers=auth)
    assert refused.status_code == 429
    now = datetime.now(UTC)
    reset = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    assert refused.json()["error"] == (
        "monthly quota exceeded: this key may make 3 predictions per month and has made 2 "
        f"(this request has 2); the quota resets at {reset.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    assert int(refused.headers["retry-after"]) > 0


# -- API5: broken function-level authorisation ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/api/keys", "admin"),
        ("GET", "/api/keys", "auditor"),
        ("GET", "/api/audit", "auditor"),
        ("GET", "/api/audit/verify", "auditor"),
        ("POST", "/v2/repository/models/credit-risk/unload", "admin"),
        ("POST", "/api/models/credit-risk/versions/1/approve", "validator"),
        ("PUT", "/api/models/credit-risk/aliases/staging", "developer"),
    ],
)
def test_api5_a_consumer_cannot_call_admin_routes(
    http: httpx.Client, keys: Keys, method: str, path: str, role: str
) -> None:
    response = http.request(method, path, json={}, headers=keys.auth("consumer"))
    assert (response.status_code, response.json()) == (
        403,
        {"error": f"this needs the role {role}; the key's role is consumer"},
    )


def test_api5_four_eyes_through_the_api(http: httpx.Client, keys: Keys) -> None:
    models = http.get("/api/models/credit-risk", headers=keys.auth("developer")).json()
    assert models["protected_aliases"] == ["production"]
    production = http.get("/v1/models/credit-risk", headers=keys.auth("admin")).json()["version"]
    other = 2 if production == "1" else 1
    dev_moves_production = http.put(
        "/api/models/credit-risk/aliases/production",
        json={"version": other},
        headers=keys.auth("developer"),
    )
    assert (dev_moves_production.status_code, dev_moves_production.json()) == (
        403,
        {
            "error": "alias 'production' of model 'credit-risk' is protected; only an admin may move it"
        },
    )
    staged = http.put(
        "/api/models/credit-risk/aliases/staging",
        json={"version": other},
        headers=keys.auth("developer"),
    )
    assert staged.json() == {"model": "credit-risk", "alias": "staging", "version": other}
    no_note = http.post(
        f"/api/models/credit-risk/versions/{other}/approve",
        json={},
        headers=keys.auth("validator"),
    )
    assert (no_note.status_code, no_note.json()) == (
        400,
        {"error": "a note is required: say what was reviewed and why"},
    )
    approved = http.post(
        f"/api/models/credit-risk/versions/{other}/approve",
        json={"note": "back-test and stability reviewed"},
        headers=keys.auth("validator"),
    )
    assert approved.status_code == 200
    assert approved.json()["decision"] == "approved"
    promoted = http.put(
        "/api/models/credit-risk/aliases/production",
        json={"version": other},
        headers=keys.auth("admin"),
    )
    assert promoted.json() == {"model": "credit-risk", "alias": "production", "version": other}
    rolled = http.post(
        "/api/models/credit-risk/aliases/production/rollback", headers=keys.auth("admin")
    )
    assert rolled.json()["version"] == int(production)  # approved before: no new approval


# -- publishing versions over the API (developer role) -----------------------------------


def _publish_body(home: Settings, **changes: object) -> dict[str, object]:
    registry = Registry.open(home)
    try:
        version = registry.get_version("credit-risk", 1)
    finally:
        registry.close()
    data = LocalArtifactStore(home.resolved_artifacts_dir).read(version.artifact_digest)
    body: dict[str, object] = {
        "artifact": base64.b64encode(data).decode(),
        "filename": "model.txt",
        "signature": orjson.loads(version.signature.to_json()),
        "metrics": {"auc": 0.79},
        "tags": {"source": "api-test"},
    }
    body.update(changes)
    return body


def test_a_developer_publishes_a_version_of_its_tenants_model(
    http: httpx.Client, keys: Keys, home: Settings
) -> None:
    developer = keys["developer"][4:20]
    published = http.post(
        "/api/models/credit-risk/versions", json=_publish_body(home), headers=keys.auth("developer")
    )
    assert published.status_code == 201, published.text
    body = published.json()
    assert body["model"] == "credit-risk"
    assert body["artifact_format"] == "lightgbm"
    assert body["created_by"] == f"key:{developer}"
    model = http.get("/api/models/credit-risk", headers=keys.auth("developer")).json()
    assert model["latest_version"] == body["version"]
    approve_own = http.post(
        f"/api/models/credit-risk/versions/{body['version']}/approve",
        json={"note": "looks fine to me"},
        headers=keys.auth("developer"),
    )
    assert (approve_own.status_code, approve_own.json()) == (
        403,
        {"error": "this needs the role validator; the key's role is developer"},
    )
    entries = http.get(
        "/api/audit", params={"action": "version.publish"}, headers=keys.auth("admin")
    ).json()["entries"]
    assert entries[-1]["target"] == f"credit-risk@{body['version']}"
    assert entries[-1]["actor"] == f"key:{developer}"


def test_a_developer_creates_a_model_in_its_own_tenant(
    http: httpx.Client, keys: Keys, home: Settings
) -> None:
    published = http.post(
        "/api/models/retail-pd/versions",
        json=_publish_body(
            home,
            description="retail PD",
            owner="retail risk",
            reference=APPLICANT,
            reason_codes={"credit_amount": "Amount requested too high"},
        ),
        headers=keys.auth("retail_developer"),
    )
    assert published.status_code == 201, published.text
    view = http.get(
        "/api/models/retail-pd/versions/1/explanation", headers=keys.auth("retail_developer")
    ).json()
    assert (view["method"], view["reference_rows"]) == ("tree_shap", len(APPLICANT))
    assert view["reason_texts"]["credit_amount"] == "Amount requested too high"
    model = http.get("/api/models/retail-pd", headers=keys.auth("retail_developer"))
    assert model.status_code == 200, model.text
    model = model.json()
    assert (model["tenant"], model["owner"], model["description"]) == (
        "retail",
        "retail risk",
        "retail PD",
    )
    hidden = http.get("/api/models/retail-pd", headers=keys.auth("outsider"))
    assert (hidden.status_code, hidden.json()) == (404, {"error": "model 'retail-pd' not found"})
    again = http.post(
        "/api/models/retail-pd/versions", json=_publish_body(home), headers=keys.auth("developer")
    )
    assert (again.status_code, again.json()) == (
        409,
        {"error": "model name 'retail-pd' is not available; choose another"},
    )


def test_the_client_publishes_and_reports_a_bad_key(
    server: InProcessServer, keys: Keys, home: Settings, tmp_path: Path
) -> None:
    registry = Registry.open(home)
    try:
        version = registry.get_version("credit-risk", 1)
    finally:
        registry.close()
    model_file = tmp_path / "model.txt"
    model_file.write_bytes(
        LocalArtifactStore(home.resolved_artifacts_dir).read(version.artifact_digest)
    )
    with Client(
        server.url, api_key=keys["retail_developer"], transport=server.transport()
    ) as client:
        published = client.publish(
            "retail-lgd", model_file, version.signature, metrics={"auc": 0.7}, owner="retail"
        )
    assert (published["model"], published["version"]) == ("retail-lgd", 1)
    with (
        Client(
            server.url, api_key="fmk_0123456789abcdef_nope", transport=server.transport()
        ) as stranger,
        pytest.raises(Unauthenticated) as caught,
    ):
        stranger.publish("retail-lgd", model_file, version.signature)
    assert str(caught.value) == "invalid API key"


@pytest.mark.parametrize(
    ("key", "changes", "status", "message"),
    [
        ("consumer", {}, 403, "this needs the role developer; the key's role is consumer"),
        ("validator", {}, 403, "this needs the role developer; the key's role is validator"),
        ("developer", {"artifact": "%%%"}, 400, "'artifact' is not valid base64"),
        (
            "developer",
            {"artifact": ""},
            400,
            "'artifact' is required: the model file, base64-encoded",
        ),
        ("developer", {"signature": None}, 400, None),
        (
            "developer",
            {"format": "pickle"},
            400,
            "'format' must be one of onnx, lightgbm, xgboost-json, xgboost-ubj, skops",
        ),
        ("developer", {"metrics": [1]}, 400, "'metrics' must be an object"),
        ("developer", {"parent_version": "1"}, 400, "'parent_version' must be a version number"),
        ("developer", {"model_file": "x"}, 400, None),
        (
            "developer",
            {"reference": "x"},
            400,
            "'reference' must be a list of 1 to 100000 records (raw inputs)",
        ),
        (
            "developer",
            {"reference": APPLICANT, "reason_codes": {"salary": "Salary"}},
            400,
            "reason code for 'salary': the signature has no such input",
        ),
        (
            "developer",
            {"reason_codes": {"credit_amount": "Too much"}},
            400,
            "reason codes need a reference sample: explanations are measured on it",
        ),
        (
            "developer",
            {"artifact": base64.b64encode(pickle.dumps({"a": 1})).decode()},
            403,
            "pickle/joblib files execute code when loaded; refused. Export the model as ONNX, "
            "LightGBM text, XGBoost JSON/UBJ or skops, or (admins only) pass --allow-pickle",
        ),
        ("retail_developer", {}, 409, "model name 'credit-risk' is not available; choose another"),
    ],
)
def test_bad_publish_requests_are_refused(
    http: httpx.Client,
    keys: Keys,
    home: Settings,
    key: str,
    changes: dict[str, object],
    status: int,
    message: str | None,
) -> None:
    before = http.get("/api/models/credit-risk", headers=keys.auth("admin")).json()
    response = http.post(
        "/api/models/credit-risk/versions",
        json=_publish_body(home, **changes),
        headers=keys.auth(key),
    )
    assert response.status_code == status, response.text
    if message is not None:
        assert response.json() == {"error": message}
    elif "model_file" in changes:
        assert response.json()["error"].startswith("unknown field 'model_file'; allowed: ")
    else:
        assert response.json()["error"].startswith("invalid signature")
    after = http.get("/api/models/credit-risk", headers=keys.auth("admin")).json()
    assert after["latest_version"] == before["latest_version"]


# -- audit and usage through the API ----------------------------------------------------


def test_admin_creates_a_key_that_works_and_the_audit_trail_records_it(
    http: httpx.Client, keys: Keys
) -> None:
    created = http.post(
        "/api/keys",
        json={
            "name": "batch-scoring",
            "role": "consumer",
            "tenant": "retail",
            "grants": [{"models": "credit-*", "verbs": ["predict"]}],
        },
        headers=keys.auth("admin"),
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    key_id = created.json()["key"]["id"]
    created_auth = {"authorization": f"Bearer {secret}"}
    assert wait_until(
        lambda: http.post(PREDICT, json=BODY, headers=created_auth).status_code == 200
    )
    entries = http.get("/api/audit", params={"action": "key.*"}, headers=keys.auth("admin")).json()[
        "entries"
    ]
    mine = [e for e in entries if e["target"] == f"key:{key_id}"]
    assert [e["action"] for e in mine] == ["key.create"]
    assert mine[0]["origin"] == "127.0.0.1"
    assert mine[0]["actor"].startswith("key:")
    assert secret not in str(entries)
    verify = http.get("/api/audit/verify", headers=keys.auth("auditor")).json()
    assert verify["ok"] is True
    assert verify["checked"] >= len(keys)


def test_usage_is_metered_per_key_and_scoped_to_the_caller(http: httpx.Client, keys: Keys) -> None:
    auth = keys.auth("validator")
    for _ in range(3):
        assert http.post(PREDICT, json=BODY, headers=auth).status_code == 200
    assert http.post(PREDICT, json={"instances": [{}]}, headers=auth).status_code == 400
    assert wait_until(
        lambda: http.get("/api/usage", headers=auth).json()["totals"]["requests"] >= 4,
        interval=0.3,
    )  # the counters are flushed now and then
    report = http.get("/api/usage", headers=auth).json()
    totals = report["totals"]
    assert (totals["requests"], totals["rows"], totals["errors"]) == (4, 6, 1)
    assert totals["latency_us"] > 0
    assert {row["key_id"] for row in report["usage"]} == {keys["validator"][4:20]}
    csv = http.get("/api/usage", params={"format": "csv"}, headers=keys.auth("admin"))
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == (
        "key_id,tenant,model,version,day,requests,rows,errors,latency_ms_total"
    )


# -- API8: security misconfiguration -----------------------------------------------------


def test_api8_probes_need_no_key_and_say_nothing_about_auth(http: httpx.Client) -> None:
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert "auth" not in http.get("/v2").json()


def test_api8_insecure_no_auth_is_visible_and_audited(home: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home.home, copy)
    settings = Settings(home=copy)
    live = start_server(settings)  # the protocol tests' mode: --insecure-no-auth
    try:
        with live.client() as http:
            assert http.get("/v2/health/live").json() == {
                "live": True,
                "auth": "disabled (--insecure-no-auth)",
            }
            assert http.post(PREDICT, json=BODY).status_code == 200
    finally:
        stop_server(live)
    log = next(copy.parent.glob("server-*.log")).read_text()
    assert "authentication is DISABLED (--insecure-no-auth)" in log
    registry = Registry.open(settings)
    try:
        starts = [e for e in registry.audit_entries() if e.action == "server.start"]
        assert starts[-1].after == {"insecure_no_auth": True}
    finally:
        registry.close()


def test_metered_usage_survives_a_sigterm_under_load(home: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home.home, copy)
    settings = Settings(home=copy)
    registry = Registry.open(settings)
    token = _issue(KeyStore(registry), "billing", "consumer")
    key_id = token[4:20]
    live = start_server(settings, workers=2, auth=True)
    ok = 0
    try:
        with live.client() as http:
            auth = {"authorization": f"Bearer {token}"}
            for _ in range(150):
                if http.post(PREDICT, json=BODY, headers=auth).status_code == 200:
                    ok += 1
    finally:
        assert stop_server(live) == 0
    rows = UsageStore(registry).query(key_id=key_id)
    registry.close()
    assert ok == 150
    assert sum(row.requests for row in rows) == ok
    assert sum(row.rows for row in rows) == 2 * ok


def test_no_secret_or_pii_value_reaches_a_log_or_an_error(home: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home.home, copy)
    settings = Settings(home=copy)
    registry = Registry.open(settings)
    store = KeyStore(registry)
    token = _issue(store, "logged", "consumer")
    admin = _issue(store, "logged-admin", "admin")
    registry.close()
    live = start_server(settings, auth=True)
    pii_value = "PII-SENTINEL-4711"
    bodies: list[str] = []
    try:
        with live.client() as http:
            auth = {"authorization": f"Bearer {token}"}
            bodies.append(http.post(PREDICT, json=BODY, headers=auth).text)
            bodies.append(http.post(PREDICT, json=BODY, headers={"x-api-key": token + "x"}).text)
            bodies.append(
                http.post(
                    PREDICT, json=BODY, headers={"authorization": f"Bearer {token[:-3]}"}
                ).text
            )
            bad = dict(APPLICANT[0], personal_status_and_sex=pii_value, age_in_years=pii_value)
            bodies.append(http.post(PREDICT, json={"instances": [bad]}, headers=auth).text)
            created = http.post(
                "/api/keys",
                json={"name": "fresh", "role": "consumer"},
                headers={"authorization": f"Bearer {admin}"},
            )
            fresh = created.json()["secret"]
            bodies.append(http.get("/api/audit", headers={"authorization": f"Bearer {admin}"}).text)
    finally:
        stop_server(live)
    log = next(copy.parent.glob("server-*.log")).read_text()
    for secret in (token, admin, fresh):
        part = secret.split("_", 2)[2]
        assert part not in log
        assert all(part not in body for body in bodies)
    assert pii_value not in log
    assert all(pii_value not in body for body in bodies)


def test_training_jobs_need_a_developer_and_stay_in_the_tenant(
    http: httpx.Client, keys: Keys
) -> None:
    body = {"template": "sentiment", "data": "YSxiCjEsMgo=", "options": {"name": "news"}}
    refused = http.post("/api/jobs", json=body, headers=keys.auth("consumer"))
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "this needs the role developer; the key's role is consumer"},
    )
    listed = http.get("/api/jobs", headers=keys.auth("consumer"))
    assert (listed.status_code, listed.json()) == (
        403,
        {
            "error": "this needs the role developer or validator or auditor; the key's role is consumer"
        },
    )
    other = dict(body, options={"name": "credit-risk"})  # a model of another tenant
    taken = http.post("/api/jobs", json=other, headers=keys.auth("retail_developer"))
    assert (taken.status_code, taken.json()) == (
        409,
        {"error": "model name 'credit-risk' is not available; choose another"},
    )
    assert http.get("/api/jobs", headers=keys.auth("auditor")).json() == {"jobs": []}
