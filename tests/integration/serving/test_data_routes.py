"""Every data-plane route of the table, with a key of another tenant and of each lower
role; and every route that scores goes through the one pipeline, once."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from finmaas.config import Settings
from finmaas.serving.pipeline import DataPlane, Inference, InferenceCall
from tests.integration.serving.homes import APPLICANT, feature_tensors
from tests.integration.serving.in_process import InProcess, start_in_process

MODEL = "credit-risk"
ROW = APPLICANT[0]
V1_BODY = {"instances": [ROW]}
V2_BODY = {"inputs": feature_tensors([ROW])}
MLFLOW_BODY = {"dataframe_records": [ROW]}


def _csv(row: dict[str, Any]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(row)
    writer.writerow(row.values())
    return text.getvalue().encode()


CSV_BODY = _csv(ROW)
NOT_FOUND = f"model '{MODEL}' not found"


@dataclass(frozen=True)
class Example:
    """One concrete request for a route of the table."""

    method: str
    pattern: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verb: str = ""
    """The model verb it needs; "" for a route that needs a role or only a key."""
    roles: tuple[str, ...] = ()


EXAMPLES = [
    Example("GET", "/v1/models", "/v1/models"),
    Example("GET", "/v1/models/{name}", f"/v1/models/{MODEL}", verb="metadata"),
    Example(
        "POST", "/v1/models/{name}:predict", f"/v1/models/{MODEL}:predict", V1_BODY, verb="predict"
    ),
    Example(
        "POST", "/v1/models/{name}:explain", f"/v1/models/{MODEL}:explain", V1_BODY, verb="explain"
    ),
    Example("GET", "/v2/models/{name}", f"/v2/models/{MODEL}", verb="metadata"),
    Example("GET", "/v2/models/{name}/ready", f"/v2/models/{MODEL}/ready", verb="metadata"),
    Example("GET", "/v2/models/{name}", f"/v2/models/{MODEL}?alias=production", verb="metadata"),
    Example(
        "POST",
        "/v2/models/{name}/infer",
        f"/v2/models/{MODEL}/infer?alias=production",
        V2_BODY,
        verb="predict",
    ),
    Example(
        "POST", "/v2/models/{name}/infer", f"/v2/models/{MODEL}/infer", V2_BODY, verb="predict"
    ),
    Example(
        "GET",
        "/v2/models/{name}/versions/{version}",
        f"/v2/models/{MODEL}/versions/1",
        verb="metadata",
    ),
    Example(
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        f"/v2/models/{MODEL}/versions/1/ready",
        verb="metadata",
    ),
    Example(
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        f"/v2/models/{MODEL}/versions/1/infer",
        V2_BODY,
        verb="predict",
    ),
    Example(
        "POST",
        "/invocations",
        "/invocations",
        MLFLOW_BODY,
        headers={"x-finmaas-model": MODEL},
        verb="predict",
    ),
    Example("POST", "/v2/repository/index", "/v2/repository/index", roles=("admin",)),
    Example(
        "POST",
        "/v2/repository/models/{name}/load",
        f"/v2/repository/models/{MODEL}/load",
        roles=("admin",),
    ),
    Example(
        "POST",
        "/v2/repository/models/{name}/unload",
        f"/v2/repository/models/{MODEL}/unload",
        roles=("admin",),
    ),
    Example("GET", "/metrics", "/metrics", roles=("auditor",)),
]
LOWER = ("developer", "validator", "auditor")


@pytest.fixture(scope="module")
def served(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    app = start_in_process(served_home, tmp_path_factory.mktemp("data-routes"))
    try:
        yield app
    finally:
        app.close()


def _send(served: InProcess, example: Example, key: str) -> Any:
    return served.request(
        example.method,
        example.path,
        key=key,
        headers=example.headers,
        json=example.json,
        content=example.content,
    )


def test_every_route_of_the_table_has_an_example(served: InProcess) -> None:
    router = served.server.app.app.router
    assert router is not None
    table = {(route.method, route.path) for route in router.routes if not route.public}
    assert table == {(example.method, example.pattern) for example in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.method} {e.pattern}")
def test_a_key_of_another_tenant(served: InProcess, example: Example) -> None:
    answer = _send(served, example, served.others["stranger"])
    body = answer.json()
    if example.verb:
        message = body["message"] if example.path == "/invocations" else body["error"]
        assert (answer.status_code, message) == (404, NOT_FOUND)
    elif example.roles:
        assert (answer.status_code, body) == (
            403,
            {"error": f"this needs the role {example.roles[0]}; the key's role is consumer"},
        )
    else:  # the list of models: none of another tenant's
        assert (answer.status_code, body) == (200, {"models": []})


@pytest.mark.parametrize("role", LOWER)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.method} {e.pattern}")
def test_a_key_of_each_lower_role(served: InProcess, example: Example, role: str) -> None:
    answer = _send(served, example, served.others[role])
    if example.roles and role not in example.roles:
        assert (answer.status_code, answer.json()) == (
            403,
            {"error": f"this needs the role {example.roles[0]}; the key's role is {role}"},
        )
    elif example.verb and role == "auditor" and example.verb != "metadata":
        body = answer.json()
        message = body["message"] if example.path == "/invocations" else body["error"]
        assert (answer.status_code, message) == (
            403,
            f"this key may not {example.verb} model '{MODEL}'",
        )
    else:
        assert answer.status_code == 200, answer.text


SCORING = [
    Example("POST", "", f"/v1/models/{MODEL}:predict", V1_BODY),
    Example("POST", "", f"/v1/models/{MODEL}:predict?explain=true", V1_BODY),
    Example("POST", "", f"/v1/models/{MODEL}:explain?reasons=2", V1_BODY),
    Example("POST", "", f"/v2/models/{MODEL}/infer", V2_BODY),
    Example(
        "POST",
        "",
        f"/v2/models/{MODEL}/versions/1/infer",
        {**V2_BODY, "parameters": {"explain": True}},
    ),
    Example("POST", "", "/invocations", MLFLOW_BODY, headers={"x-finmaas-model": MODEL}),
    Example(
        "POST",
        "",
        "/invocations",
        content=CSV_BODY,
        headers={"x-finmaas-model": MODEL, "content-type": "text/csv"},
    ),
]


@pytest.mark.parametrize("example", SCORING, ids=lambda e: e.path)
def test_every_scoring_route_calls_the_one_pipeline_once(
    served: InProcess, example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[InferenceCall] = []
    infer = DataPlane.infer

    async def counted(plane: DataPlane, call: InferenceCall) -> Inference:
        calls.append(call)
        return await infer(plane, call)

    monkeypatch.setattr(DataPlane, "infer", counted)
    answer = _send(served, example, served.consumer)
    assert answer.status_code == 200, answer.text
    assert [(call.name, call.principal.role) for call in calls] == [(MODEL, "consumer")]


LONG = "9" * 5000  # int() refuses more than 4,300 digits: the length is checked first


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            f"/v1/models/{MODEL}:predict?version={LONG}",
            V1_BODY,
            f"version must be a positive integer, got {LONG[:40]!r}",
        ),
        (
            "POST",
            f"/v2/models/{MODEL}/versions/{LONG}/infer",
            V2_BODY,
            f"version must be a positive integer, got {LONG[:40]!r}",
        ),
        (
            "POST",
            f"/api/models/{MODEL}/versions/{LONG}/approve",
            {},
            f"version must be a positive integer, got {LONG[:40]!r}",
        ),
    ],
    ids=["v1", "v2", "api"],
)
def test_a_version_of_thousands_of_digits_is_a_400(
    served: InProcess, method: str, path: str, body: Any, message: str
) -> None:
    answer = served.request(method, path, key=served.admin, json=body)
    assert (answer.status_code, answer.json()) == (400, {"error": message})
