"""Golden payloads: every request under ``tests/golden/<protocol>/`` is sent to the app in
process and its answer compared with the ``.response`` file beside it (see
``tests/golden/README.md`` for the format).

Status and headers must match exactly, bodies byte for byte, except that a number that
is not an integer may differ by ``FLOAT_TOLERANCE`` from the golden one, in JSON and in
V2 binary FP32/FP64 tensors: the last bits of a tree sum or a SHAP value depend on the
CPU and the library build, not on finmaas.

``FINMAAS_UPDATE_GOLDEN=1`` rewrites the ``.response`` files from what the app answers;
each case is then skipped, so such a run never passes. Review the diff before committing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
import pytest

from finmaas import __version__
from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.publish.registration import register
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.schema import encode_frame
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.in_process import InProcessServer, serve_in_process

GOLDEN = Path(__file__).parents[2] / "golden"
UPDATE = os.environ.get("FINMAAS_UPDATE_GOLDEN") == "1"
FLOAT_TOLERANCE = 1e-9
VERSION = "{finmaas_version}"
UNRECORDED = frozenset({"content-length"})  # follows from the body
REGISTERED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BINARY_DTYPES = {"FP32": "<f4", "FP64": "<f8"}
CASES = sorted(GOLDEN.glob("*/*.request"))


@dataclass(frozen=True)
class Message:
    """A request (``start``: ``METHOD /path?query``) or a response (``start``: the status)."""

    start: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> Message:
        head, _, body = data.partition(b"\n\n")
        start, *lines = head.decode().split("\n")
        headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
        return cls(start, headers, body)

    def dump(self) -> bytes:
        head = "".join(f"{name}: {value}\n" for name, value in self.headers)
        return f"{self.start}\n{head}\n".encode() + self.body


@dataclass(frozen=True)
class Golden:
    server: InProcessServer
    keys: dict[str, str]


def _registered_home(folder: Path) -> Settings:
    """credit-risk@1 in production: a 20-tree LightGBM on German Credit, trained on one
    thread so that its scores do not depend on the machine, registered at a fixed time."""
    settings = Settings(home=folder / "home")
    frame = load_german_credit()
    signature = german_credit_signature()
    features = frame.drop(columns=[GERMAN_CREDIT_TARGET])
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    categorical = [i for i, f in enumerate(signature.inputs) if f.dtype == "category"]
    data = lgb.Dataset(
        encode_frame(signature, features),
        y,
        feature_name=list(signature.feature_names),
        categorical_feature=categorical,
    )
    params = {"objective": "binary", "num_leaves": 4, "seed": 0, "deterministic": True}
    booster = lgb.train({**params, "num_threads": 1, "verbose": -1}, data, num_boost_round=20)
    opened = Registry.open(settings)
    registry = Registry(opened.engine, clock=lambda: REGISTERED_AT)
    try:
        register(
            "credit-risk",
            booster,
            features,
            signature=signature,
            metrics={"auc": 0.8},
            trained_on_encoded=True,
            registry=registry,
            store=LocalArtifactStore(settings.resolved_artifacts_dir),
            actor=Actor("local:author", role="developer"),
        )
        approver = Actor("local:golden")
        registry.decide("credit-risk", 1, "approved", note="golden payloads", actor=approver)
        registry.set_alias("credit-risk", "production", 1, actor=approver)
    finally:
        registry.close()
    return settings


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Golden]:
    settings = _registered_home(tmp_path_factory.mktemp("golden"))
    registry = Registry.open(settings)
    try:
        store = KeyStore(registry)
        keys = {
            role: issue_key(store, name=role, role=role, actor="local:golden").token
            for role in ("admin", "consumer")
        }
    finally:
        registry.close()
    server = serve_in_process(settings, auth=True, serve_model="credit-risk@production")
    try:
        yield Golden(server, keys)
    finally:
        server.close()


def _decoded(message: Message) -> Any:
    """The body as it is compared when its bytes differ: parsed JSON, a V2 binary body
    as its JSON header and its tensors (floats decoded), anything else as bytes."""
    headers = dict(message.headers)
    if "inference-header-content-length" in headers:
        size = int(headers["inference-header-content-length"])
        header = orjson.loads(message.body[:size])
        tensors, offset = [], size
        for output in header["outputs"]:
            length = output.get("parameters", {}).get("binary_data_size")
            if length is None:
                continue
            chunk = message.body[offset : offset + length]
            dtype = BINARY_DTYPES.get(output["datatype"])
            tensors.append(np.frombuffer(chunk, dtype).tolist() if dtype else chunk)
            offset += length
        return {"header": header, "tensors": tensors, "rest": message.body[offset:]}
    if headers.get("content-type", "").startswith("application/json"):
        return orjson.loads(message.body)
    return message.body


def _within_tolerance(actual: Any, expected: Any) -> Any:
    """``actual`` with every float that is within FLOAT_TOLERANCE of the golden one
    replaced by it, so that comparing the two shows only the real differences."""
    if isinstance(actual, float) and isinstance(expected, float):
        return expected if abs(actual - expected) <= FLOAT_TOLERANCE else actual
    if isinstance(actual, dict) and isinstance(expected, dict):
        return {k: _within_tolerance(v, expected.get(k)) for k, v in actual.items()}
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        return [_within_tolerance(a, e) for a, e in zip(actual, expected, strict=True)]
    return actual


def _send(golden: Golden, request: Message) -> Message:
    method, target = request.start.split(" ", 1)
    headers = {name: value.format_map(golden.keys) for name, value in request.headers}
    with golden.server.client() as http:
        response = http.request(method, target, headers=headers, content=request.body)
    kept = [(k, v) for k, v in response.headers.multi_items() if k not in UNRECORDED]
    return Message(str(response.status_code), kept, response.content)


def _versioned(message: Message) -> Message:
    """``message`` with the package version written as VERSION."""
    dumped = message.dump().replace(__version__.encode(), VERSION.encode())
    return Message.parse(dumped)


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_the_answer_is_the_golden_one(golden: Golden, case: Path) -> None:
    answer = _send(golden, Message.parse(case.read_bytes()))
    recorded = case.with_suffix(".response")
    if UPDATE:
        recorded.write_bytes(_versioned(answer).dump())
        pytest.skip(f"wrote {recorded.relative_to(GOLDEN)}: review the diff")
    assert recorded.exists(), f"no {recorded.name}: run with FINMAAS_UPDATE_GOLDEN=1"
    expected = Message.parse(recorded.read_bytes().replace(VERSION.encode(), __version__.encode()))
    assert (answer.start, sorted(answer.headers)) == (expected.start, sorted(expected.headers))
    if answer.body != expected.body:
        wanted = _decoded(expected)
        assert _within_tolerance(_decoded(answer), wanted) == wanted


def test_every_protocol_has_golden_cases() -> None:
    protocols = {case.parent.name for case in CASES}
    assert protocols == {"v1", "v2", "mlflow", "api"}
    responses = {p.with_suffix(".request") for p in GOLDEN.glob("*/*.response")}
    assert responses <= set(CASES), "a .response file without its .request"
