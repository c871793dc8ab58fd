"""Object-level authorisation of every ``/api`` route across tenants, and the
tenant each audit entry belongs to (OWASP API1), with the app in process on
SQLite and PostgreSQL.

The world: ``credit-risk`` belongs to tenant-a, ``tb-credit`` to tenant-b. Some
tenant-b keys hold a grant on ``credit-risk`` (they may read its metadata, never
change or approve it); others hold none (the model does not exist for them).
Every key was made by an admin of ``default``, as in the acceptance run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.app import FinmaasApp
from finmaas.config import Settings
from finmaas.monitoring.decision_records import Decision, DecisionStore
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.records import ModelUpdate, NewModel
from finmaas.registry.tables import jobs
from finmaas.registry.usage import UsageRow, UsageStore
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant
from tests.integration.registry.helpers import new_version
from tests.integration.serving.in_process import BASE_URL, AppThread, AppTransport

OTHER_TENANT = "model 'credit-risk' belongs to another tenant"
NOT_FOUND = "model 'credit-risk' not found"
NOTE = {"note": "back-test and stability reviewed"}
JOB = {"template": "sentiment", "data": "YSxiCjEsMgo=", "options": {"name": "credit-risk"}}
SETUP = Actor("local:setup")  # an admin of default
CLIENT = "10.1.2.3"

KEYS: dict[str, tuple[str, str, str | None]] = {
    # name: (role, tenant, grant)
    "admin": ("admin", "default", None),
    "a_developer": ("developer", "tenant-a", None),
    "a_validator": ("validator", "tenant-a", None),
    "a_auditor": ("auditor", "tenant-a", None),
    "a_consumer": ("consumer", "tenant-a", None),
    "b_validator": ("validator", "tenant-b", "credit-risk:metadata"),  # the acceptance run's key
    "b_developer": ("developer", "tenant-b", "credit-risk:metadata"),
    "b_consumer": ("consumer", "tenant-b", "credit-risk:predict,metadata"),
    "b_auditor": ("auditor", "tenant-b", None),
    "b_stranger": ("validator", "tenant-b", None),
    "b_stranger_dev": ("developer", "tenant-b", None),
}


class InProcessApi:
    """The app on an event loop of its own thread, called from ``CLIENT``'s address."""

    def __init__(self, settings: Settings, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.app = AppThread(FinmaasApp(settings))
        transport = AppTransport(self.app, client=(CLIENT, 40000))
        self.http = httpx.Client(transport=transport, base_url=BASE_URL, timeout=60)

    def call(
        self, key: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[key]}"}
        return self.http.request(method, path, json=body, headers=headers)

    def close(self) -> None:
        try:
            self.http.close()
        finally:
            self.app.close()


@dataclass
class World:
    api: InProcessApi
    ids: dict[str, str]
    job_id: str


def _seed(settings: Settings) -> tuple[dict[str, str], dict[str, str], str]:
    registry = Registry.open(settings)
    try:
        store = KeyStore(registry)
        tokens, ids = {}, {}
        for name, (role, tenant, grant) in KEYS.items():
            grants = (parse_grant(grant),) if grant else ()
            issued = issue_key(
                store,
                name=name.replace("_", "-"),
                role=role,
                tenant=tenant,
                grants=grants,
                actor=SETUP,
            )
            tokens[name], ids[name] = issued.token, issued.record.id
        author = Actor(f"key:{ids['a_developer']}", role="developer", tenant="tenant-a")
        a_model = NewModel(tenant="tenant-a")
        registry.publish_version("credit-risk", new_version("1"), actor=author, model_spec=a_model)
        registry.publish_version("credit-risk", new_version("2"), actor=author)
        b_author = Actor(f"key:{ids['b_developer']}", role="developer", tenant="tenant-b")
        b_model = NewModel(tenant="tenant-b")
        registry.publish_version("tb-credit", new_version("b"), actor=b_author, model_spec=b_model)
        registry.decide("credit-risk", 1, "approved", note="first review", actor=SETUP)
        registry.set_alias("credit-risk", "production", 1, actor=SETUP)
        job_id = "a" * 32
        with registry.write() as conn:
            conn.execute(
                sa.insert(jobs).values(
                    id=job_id,
                    template="credit",
                    state="succeeded",
                    spec={"options": {"name": "credit-risk"}, "actor": {}},
                    tenant="tenant-a",
                    created_by=author.name,
                    created_at=registry.now(),
                    finished_at=registry.now(),
                    log="",
                )
            )
        today = datetime.now(UTC).date()
        UsageStore(registry).add(
            UsageRow(ids[key], tenant, "credit-risk", 1, today, 3, 3, 0, 900)
            for key, tenant in (("a_consumer", "tenant-a"), ("b_consumer", "tenant-b"))
        )
        DecisionStore(registry).add(
            [
                Decision(
                    recorded_at=datetime.now(UTC),
                    request_id="req-a",
                    row=0,
                    subject=None,
                    tenant="tenant-a",
                    model="credit-risk",
                    version=1,
                    alias="production",
                    output=0.2,
                    decision="good",
                    reasons=None,
                    key_id=ids["a_consumer"],
                )
            ]
        )
        return tokens, ids, job_id
    finally:
        registry.close()


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    tokens, ids, job_id = _seed(settings)
    api = InProcessApi(settings, tokens)
    try:
        yield World(api, ids, job_id)
    finally:
        api.close()


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error", "")


def _audit(world: World, key: str, **query: str) -> list[dict[str, Any]]:
    response = world.api.http.get(
        "/api/audit",
        params={"limit": "10000", **query},
        headers={"authorization": f"Bearer {world.api.tokens[key]}"},
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


# -- the acceptance run's defect -----------------------------------------------------------


def test_a_validator_of_another_tenant_cannot_approve_so_four_eyes_holds(world: World) -> None:
    api = world.api
    for action in ("approve", "reject"):
        refused = api.call(
            "b_validator", "POST", f"/api/models/credit-risk/versions/2/{action}", NOTE
        )
        assert _error(refused) == (403, OTHER_TENANT)
    promoted = api.call(
        "admin", "PUT", "/api/models/credit-risk/aliases/production", {"version": 2}
    )
    assert _error(promoted) == (
        403,
        "alias 'production' of model 'credit-risk' is protected: version 2 needs an approval "
        "by a validator of tenant 'tenant-a' or an admin, other than its author "
        f"(key:{world.ids['a_developer']}). Such a validator approves it with their own key "
        "(`finmaas --server URL models approve credit-risk 2 --note …`); then promote it again",
    )
    seen = _audit(world, "a_auditor", action="version.*")
    assert [(e["action"], e["target"], e["actor"], e["tenant"], e["origin"]) for e in seen] == [
        ("version.publish", "credit-risk@1", f"key:{world.ids['a_developer']}", "tenant-a", "local"),
        ("version.publish", "credit-risk@2", f"key:{world.ids['a_developer']}", "tenant-a", "local"),
        ("version.approve", "credit-risk@1", "local:setup", "tenant-a", "local"),
        ("version.approve.refused", "credit-risk@2", f"key:{world.ids['b_validator']}", "tenant-a", CLIENT),
        ("version.reject.refused", "credit-risk@2", f"key:{world.ids['b_validator']}", "tenant-a", CLIENT),
    ]  # fmt: skip
    assert seen[-1]["after"] == {
        "refused": OTHER_TENANT,
        "actor_tenant": "tenant-b",
        "actor_role": "validator",
    }
    assert _audit(world, "b_auditor", target="credit-risk*") == []
    approved = api.call("a_validator", "POST", "/api/models/credit-risk/versions/2/approve", NOTE)
    assert approved.status_code == 200, approved.text
    promoted = api.call(
        "admin", "PUT", "/api/models/credit-risk/aliases/production", {"version": 2}
    )
    assert promoted.json() == {"model": "credit-risk", "alias": "production", "version": 2}
    verified = api.call("a_auditor", "GET", "/api/audit/verify")
    assert verified.json()["ok"] is True


# -- every /api route, with keys of another tenant and each lower role ----------------------

V2 = "/api/models/credit-risk/versions/2"
ALIAS = "/api/models/credit-risk/aliases"
PUBLISH = "/api/models/credit-risk/versions"


def _role(needed: str, role: str) -> str:
    return f"this needs the role {needed}; the key's role is {role}"


# key, method, path, body, status, message, audited as (in tenant-a's trail)
REFUSALS: list[tuple[str, str, str, dict[str, Any] | None, int, str, str | None]] = [
    # keys: admins only write them; auditors read their own tenant's
    ("b_validator", "POST", "/api/keys", {"name": "x", "role": "admin", "tenant": "tenant-a"},
     403, _role("admin", "validator"), None),
    ("a_auditor", "POST", "/api/keys", {"name": "x", "role": "admin"},
     403, _role("admin", "auditor"), None),
    # token limits: still only admins, whatever the values (checked after the role)
    ("b_validator", "POST", "/api/keys", {"name": "x", "role": "consumer", "tenant": "tenant-a",
     "tokens_per_minute": 10**6, "monthly_token_quota": 10**9}, 403, _role("admin", "validator"), None),
    ("a_developer", "POST", "/api/keys", {"name": "x", "role": "consumer", "tokens_per_minute": 0},
     403, _role("admin", "developer"), None),
    ("a_auditor", "POST", "/api/keys", {"name": "x", "role": "consumer", "monthly_token_quota": "x"},
     403, _role("admin", "auditor"), None),
    ("b_consumer", "POST", "/api/keys", {"name": "x", "role": "consumer", "tokens_per_minute": 5},
     403, _role("admin", "consumer"), None),
    ("b_validator", "GET", "/api/keys", None, 403, _role("auditor", "validator"), None),
    ("b_auditor", "GET", "/api/keys/{a_validator}", None, 404, "key '{a_validator}' not found", None),
    ("b_validator", "POST", "/api/keys/{a_validator}/revoke", None, 403, _role("admin", "validator"), None),
    ("b_developer", "POST", "/api/keys/{a_validator}/rotate", None, 403, _role("admin", "developer"), None),
    # reads of a model the key has no grant on
    ("b_stranger", "GET", "/api/models/credit-risk", None, 404, NOT_FOUND, None),
    ("b_stranger", "GET", PUBLISH, None, 404, NOT_FOUND, None),
    ("b_auditor", "GET", V2, None, 404, NOT_FOUND, None),
    ("b_stranger_dev", "GET", f"{PUBLISH}/production", None, 404, NOT_FOUND, None),
    ("b_auditor", "GET", f"{V2}/drift", None, 404, NOT_FOUND, None),
    ("b_stranger", "GET", f"{V2}/explanation", None, 404, NOT_FOUND, None),
    ("b_stranger", "GET", f"{V2}/card", None, 404, NOT_FOUND, None),
    # approvals: never by another tenant, whatever its grants
    ("b_validator", "POST", f"{V2}/approve", NOTE, 403, OTHER_TENANT, "version.approve.refused"),
    ("b_validator", "POST", f"{V2}/reject", NOTE, 403, OTHER_TENANT, "version.reject.refused"),
    ("b_validator", "POST", f"{V2}/approve", {"bogus": 1}, 403, OTHER_TENANT, "version.approve.refused"),
    ("b_consumer", "POST", f"{V2}/approve", NOTE, 403, _role("validator", "consumer"), "version.approve.refused"),
    ("b_developer", "POST", f"{V2}/reject", NOTE, 403, _role("validator", "developer"), "version.reject.refused"),
    # a key that cannot see the model: the unknown name's answer, nothing written
    ("b_auditor", "POST", f"{V2}/approve", NOTE, 404, NOT_FOUND, None),
    ("b_stranger", "POST", f"{V2}/reject", NOTE, 404, NOT_FOUND, None),
    ("a_consumer", "POST", f"{V2}/approve", NOTE, 403, _role("validator", "consumer"), None),
    ("a_developer", "POST", f"{V2}/approve", NOTE, 403, _role("validator", "developer"), None),
    ("a_auditor", "POST", f"{V2}/reject", NOTE, 403, _role("validator", "auditor"), None),
    # aliases
    ("b_developer", "PUT", f"{ALIAS}/staging", {"version": 1}, 403, OTHER_TENANT, "alias.set.refused"),
    ("b_developer", "POST", f"{ALIAS}/production/rollback", None, 403, OTHER_TENANT, "alias.rollback.refused"),
    ("b_consumer", "PUT", f"{ALIAS}/staging", {"version": 1}, 403, _role("developer", "consumer"), "alias.set.refused"),
    ("b_validator", "PUT", f"{ALIAS}/staging", {"version": 1}, 403, _role("developer", "validator"), "alias.set.refused"),
    ("b_stranger_dev", "PUT", f"{ALIAS}/staging", {"version": 1}, 404, NOT_FOUND, None),
    ("a_consumer", "PUT", f"{ALIAS}/staging", {"version": 1}, 403, _role("developer", "consumer"), None),
    ("a_validator", "PUT", f"{ALIAS}/staging", {"version": 1}, 403, _role("developer", "validator"), None),
    ("a_developer", "PUT", f"{ALIAS}/production", {"version": 2}, 403,
     "alias 'production' of model 'credit-risk' is protected; only an admin may move it", None),
    # publishing a version
    ("b_developer", "POST", PUBLISH, {}, 403, OTHER_TENANT, "version.publish.refused"),
    ("b_stranger_dev", "POST", PUBLISH, {}, 409,
     "model name 'credit-risk' is not available; choose another", "version.publish.refused"),
    ("b_consumer", "POST", PUBLISH, {}, 403, _role("developer", "consumer"), "version.publish.refused"),
    ("a_validator", "POST", PUBLISH, {}, 403, _role("developer", "validator"), None),
    # jobs (the model is named in the body)
    ("b_developer", "POST", "/api/jobs", JOB, 403, OTHER_TENANT, "job.start.refused"),
    ("b_stranger_dev", "POST", "/api/jobs", JOB, 409,
     "model name 'credit-risk' is not available; choose another", "job.start.refused"),
    ("b_consumer", "POST", "/api/jobs", JOB, 403, _role("developer", "consumer"), None),
    ("b_consumer", "GET", "/api/jobs", None, 403, _role("developer or validator or auditor", "consumer"), None),
    ("b_auditor", "GET", "/api/jobs/{job}", None, 404, "no job '{job}'", None),
    # usage, audit, decisions
    ("b_consumer", "GET", "/api/audit", None, 403, _role("auditor", "consumer"), None),
    ("b_validator", "GET", "/api/audit/verify", None, 403, _role("auditor", "validator"), None),
    ("b_auditor", "GET", "/api/decisions/req-a", None, 404, "no decision recorded for request id 'req-a'", None),
    ("b_consumer", "GET", "/api/decisions/req-a", None, 403, _role("auditor", "consumer"), None),
]  # fmt: skip


def test_every_refusal_has_its_status_and_message_and_cross_tenant_ones_are_audited(
    world: World, settings: Settings
) -> None:
    api = world.api
    names = {**world.ids, "job": world.job_id}
    before = api.call("admin", "GET", "/api/models/credit-risk").json()
    expected_trail = []
    for key, method, path, body, status, message, audited in REFUSALS:
        response = api.call(key, method, path.format(**names), body)
        case = f"{key} {method} {path}"
        assert _error(response) == (status, message.format(**names)), case
        if audited is not None:
            expected_trail.append((audited, f"key:{world.ids[key]}", message))
    trail = _audit(world, "a_auditor", action="*.refused")
    assert [(e["action"], e["actor"], e["after"]["refused"]) for e in trail] == expected_trail
    assert {e["tenant"] for e in trail} == {"tenant-a"}
    assert _audit(world, "b_auditor", action="*.refused") == []
    after = api.call("admin", "GET", "/api/models/credit-risk").json()
    assert after == before  # nothing changed: no version, no validation status
    registry = Registry.open(settings)
    try:
        assert [(a.name, a.version) for a in registry.list_aliases("credit-risk")] == [
            ("production", 1)
        ]
        assert [a.version for a in registry.list_approvals("credit-risk")] == [1]
    finally:
        registry.close()
    assert api.call("a_auditor", "GET", "/api/audit/verify").json()["ok"] is True


def test_a_grant_lets_another_tenant_read_but_each_tenant_sees_only_its_own(
    world: World,
) -> None:
    api = world.api
    whoami = api.call("b_validator", "GET", "/api/whoami").json()
    assert whoami == {
        "key_id": world.ids["b_validator"],
        "name": "b-validator",
        "role": "validator",
        "tenant": "tenant-b",
    }
    model = api.call("b_validator", "GET", "/api/models/credit-risk")
    assert (model.status_code, model.json()["tenant"]) == (200, "tenant-a")
    assert api.call("b_validator", "GET", f"{V2}/card").status_code == 200
    shown = api.call("b_validator", "GET", V2).json()
    assert (shown["ref"], shown["created_by"]) == (
        "credit-risk@2",
        f"key:{world.ids['a_developer']}",
    )
    versions = api.call("b_validator", "GET", PUBLISH).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert _error(api.call("b_validator", "GET", f"{V2}/explanation")) == (
        404,
        "credit-risk@2 has no explanation profile",
    )
    listed = api.call("b_validator", "GET", "/api/models").json()["models"]
    assert [m["name"] for m in listed] == ["credit-risk"]  # its grant, not its tenant
    assert [m["name"] for m in api.call("b_auditor", "GET", "/api/models").json()["models"]] == [
        "tb-credit"
    ]
    everything = api.call("b_auditor", "GET", "/api/models?all=1").json()["models"]
    assert [m["name"] for m in everything] == ["tb-credit"]  # archived too, still its own
    keys = api.call("b_auditor", "GET", "/api/keys").json()["keys"]
    assert {k["tenant"] for k in keys} == {"tenant-b"}
    assert api.call("b_auditor", "GET", "/api/jobs").json() == {"jobs": []}
    assert [j["id"] for j in api.call("a_auditor", "GET", "/api/jobs").json()["jobs"]] == [
        world.job_id
    ]
    usage = api.call("b_auditor", "GET", "/api/usage").json()["usage"]
    assert {row["key_id"] for row in usage} == {world.ids["b_consumer"]}
    own = api.call("b_consumer", "GET", "/api/usage", None)
    assert {row["key_id"] for row in own.json()["usage"]} == {world.ids["b_consumer"]}
    decisions = api.call("a_auditor", "GET", "/api/decisions/req-a")
    assert decisions.status_code == 200


# -- token limits on keys, over /api -------------------------------------------------------


def test_an_admins_key_with_token_limits_is_shown_to_its_tenant_only(world: World) -> None:
    api = world.api
    body = {
        "name": "b-assistant",
        "role": "consumer",
        "tenant": "tenant-b",
        "tokens_per_minute": 90_000,
        "monthly_token_quota": 50_000_000,
    }
    created = api.call("admin", "POST", "/api/keys", body)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert (key["tokens_per_minute"], key["monthly_token_quota"]) == (90_000, 50_000_000)
    shown = api.call("b_auditor", "GET", f"/api/keys/{key['id']}").json()
    assert (shown["tokens_per_minute"], shown["monthly_token_quota"]) == (90_000, 50_000_000)
    listed = {k["id"]: k for k in api.call("b_auditor", "GET", "/api/keys").json()["keys"]}
    assert listed[key["id"]]["monthly_token_quota"] == 50_000_000
    assert all(k["tokens_per_minute"] is None for i, k in listed.items() if i != key["id"])
    hidden = api.call("a_auditor", "GET", f"/api/keys/{key['id']}")
    assert _error(hidden) == (404, f"key {key['id']!r} not found")
    [entry] = _audit(world, "b_auditor", action="key.create", target=f"key:{key['id']}")
    assert (entry["after"]["tokens_per_minute"], entry["after"]["monthly_token_quota"]) == (
        90_000,
        50_000_000,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tokens_per_minute", 0, "tokens per minute must be a whole number from 1 to 2147483647, got 0"),
        ("tokens_per_minute", -1, "tokens per minute must be a whole number from 1 to 2147483647, got -1"),
        ("tokens_per_minute", 2**31,
         "tokens per minute must be a whole number from 1 to 2147483647, got 2147483648"),
        ("tokens_per_minute", "1000", "'tokens_per_minute' must be a whole number"),
        ("tokens_per_minute", 1.5, "'tokens_per_minute' must be a whole number"),
        ("tokens_per_minute", True, "'tokens_per_minute' must be a whole number"),
        ("monthly_token_quota", 0,
         "monthly token quota must be a whole number from 1 to 1000000000000, got 0"),
        ("monthly_token_quota", 10**12 + 1,
         "monthly token quota must be a whole number from 1 to 1000000000000, got 1000000000001"),
        ("monthly_token_quota", [1], "'monthly_token_quota' must be a whole number"),
    ],
)  # fmt: skip
def test_bad_token_limits_in_a_key_body_are_400_and_create_nothing(
    world: World, field: str, value: object, message: str
) -> None:
    api = world.api
    before = api.call("admin", "GET", "/api/keys").json()["keys"]
    body = {"name": "bad-limits", "role": "consumer", "tenant": "tenant-b", field: value}
    assert _error(api.call("admin", "POST", "/api/keys", body)) == (400, message)
    assert api.call("admin", "GET", "/api/keys").json()["keys"] == before


# -- the audit trail belongs to the object's tenant ------------------------------------------


def test_an_auditor_sees_its_tenants_objects_whoever_acted_and_nothing_else(
    world: World, settings: Settings
) -> None:
    api = world.api
    registry = Registry.open(settings)
    try:
        registry.update_model("tb-credit", ModelUpdate(risk_tier=1), actor=SETUP)
    finally:
        registry.close()
    refused = api.call("b_validator", "POST", f"{V2}/reject", NOTE)
    assert refused.status_code == 403
    created = api.call(
        "admin", "POST", "/api/keys", {"name": "b-batch", "role": "consumer", "tenant": "tenant-b"}
    )
    assert created.status_code == 201
    b_ids = {world.ids[k] for k in KEYS if k.startswith("b_")} | {created.json()["key"]["id"]}
    a_ids = {world.ids[k] for k in KEYS if k.startswith("a_")}

    a_seen = _audit(world, "a_auditor")
    assert {e["tenant"] for e in a_seen} == {"tenant-a"}
    assert {e["target"] for e in a_seen if e["action"] == "key.create"} == {
        f"key:{i}" for i in a_ids
    }
    assert not [e for e in a_seen if e["target"] in {f"key:{i}" for i in b_ids}]
    assert not [e for e in a_seen if e["target"].startswith("tb-credit")]
    assert ("version.reject.refused", f"key:{world.ids['b_validator']}") in {
        (e["action"], e["actor"]) for e in a_seen
    }

    b_seen = _audit(world, "b_auditor")
    assert {e["tenant"] for e in b_seen} == {"tenant-b"}
    assert {e["target"] for e in b_seen if e["action"] == "key.create"} == {
        f"key:{i}" for i in b_ids
    }
    assert ("model.update", "tb-credit", "local:setup") in {
        (e["action"], e["target"], e["actor"]) for e in b_seen
    }
    assert not [e for e in b_seen if e["target"].startswith("credit-risk")]

    admin_seen = _audit(world, "admin")
    assert len(admin_seen) == len(a_seen) + len(b_seen) + 1  # and default's admin key
    verified = api.call("b_auditor", "GET", "/api/audit/verify").json()
    assert (verified["ok"], verified["checked"]) == (True, len(admin_seen))
