"""Bodies are read only after the key (and the route's role) are checked, and uploads
are streamed to disk: the app called in process, with a ``receive`` that counts reads.

``reads == 0`` in an answer means the app refused the request without reading one
byte of its body.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from finmaas.actor import local_actor
from finmaas.app import FinmaasApp
from finmaas.config import Settings
from finmaas.publish.publishing import publish_bytes
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.guard import INVALID_KEY, MISSING_KEY
from finmaas.security.key_secrets import issue_key
from finmaas.web.uploads import SPOOL
from tests.unit.runtimes.cases import Case, lightgbm_case

T = TypeVar("T")
MAX_BODY = 64 * 1024
MAX_UPLOAD = 1024 * 1024
HUGE = str(200 * 1024 * 1024)
PUBLISH = "/api/models/tiny/versions"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: Any
    reads: int
    """How often the app called ``receive``: 0 means no byte of the body was read."""


@pytest.fixture
def served(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "access_log": "off",
            "max_body_bytes": MAX_BODY,
            "max_upload_bytes": MAX_UPLOAD,
            "max_concurrent_uploads": 2,
        }
    )


@pytest.fixture
def keys(served: Settings) -> dict[str, str]:
    registry = Registry.open(served)
    store = KeyStore(registry)
    try:
        return {
            role: issue_key(store, name=role, role=role, actor="local:t").token
            for role in ("admin", "developer", "validator", "consumer", "auditor")
        } | {
            "stranger": issue_key(
                store, name="stranger", role="developer", tenant="other", actor="local:t"
            ).token
        }
    finally:
        registry.close()


@pytest.fixture
def tiny(tmp_path: Path) -> Case:
    return lightgbm_case(tmp_path, "binary")


def _serve(settings: Settings, scenario: Callable[[FinmaasApp], Awaitable[T]]) -> T:
    async def main() -> T:
        app = FinmaasApp(settings)
        await app.startup()
        try:
            return await scenario(app)
        finally:
            await app.shutdown()

    return asyncio.run(main())


async def _call(
    app: FinmaasApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | list[bytes] | None = None,
    *,
    hold: asyncio.Event | None = None,
) -> Answer:
    """One request; ``body`` None: the body never comes (a client still sending it);
    ``hold``: every read waits for it."""
    chunks = [] if body is None else [body] if isinstance(body, bytes) else list(body)
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if hold is not None:
            await hold.wait()
        if not chunks:
            await asyncio.Event().wait()  # the rest of the body is still on its way
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
    }
    await app(scope, receive, send)
    start, content = sent
    answer = content["body"]
    parsed = orjson.loads(answer) if start["headers"][0][1] == b"application/json" else answer
    return Answer(start["status"], dict(start["headers"]), parsed, reads)


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def _bearer(token: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **more}


def _multipart(
    files: dict[str, tuple[str | None, bytes, str]], token: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers (with Content-Length) and body of a multipart/form-data request."""
    request = httpx.Request("POST", "http://test/", files=files)
    body = request.read()
    headers = {
        "content-type": request.headers["content-type"],
        "content-length": str(len(body)),
    }
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers, body


def _metadata(case: Case, **changes: Any) -> bytes:
    return orjson.dumps({"signature": orjson.loads(case.signature.to_json()), **changes})


def _publish_parts(case: Case, **changes: Any) -> dict[str, tuple[str | None, bytes, str]]:
    return {
        "metadata": (None, _metadata(case, **changes), "application/json"),
        "artifact": ("model.txt", case.data, "application/octet-stream"),
    }


def _spooled(settings: Settings) -> list[Path]:
    root = settings.home / SPOOL
    return list(root.iterdir()) if root.exists() else []


# -- the key before the body ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/keys"),
        ("POST", PUBLISH),
        ("POST", "/api/jobs"),
        ("POST", "/v1/models/tiny:predict"),
        ("POST", "/v2/models/tiny/infer"),
        ("POST", "/invocations"),
    ],
)
@pytest.mark.parametrize(
    ("auth", "message"),
    [({}, MISSING_KEY), (_bearer("fmk_0123456789abcdef_nope"), INVALID_KEY)],
)
def test_a_request_without_a_valid_key_is_refused_before_its_body(
    served: Settings,
    keys: dict[str, str],
    method: str,
    path: str,
    auth: dict[str, str],
    message: str,
) -> None:
    headers = {**auth, "content-type": "multipart/form-data; boundary=x", "content-length": HUGE}
    answer = _serve(served, lambda app: _call(app, method, path, headers))
    assert (answer.status, answer.reads) == (401, 0)
    error = answer.body if path != "/invocations" else {"error": answer.body["message"]}
    assert error == {"error": message}
    # The body is left unread: the connection closes rather than read 200 MiB to drop it.
    assert answer.headers[b"connection"] == b"close"
    assert answer.headers[b"www-authenticate"] == b'Bearer realm="finmaas"'


def test_a_small_unread_body_keeps_the_connection(served: Settings) -> None:
    headers = {"content-type": "application/json", "content-length": "20"}
    answer = _serve(served, lambda app: _call(app, "POST", "/api/keys", headers))
    assert (answer.status, answer.reads) == (401, 0)
    assert b"connection" not in answer.headers


@pytest.mark.parametrize(
    ("key", "method", "path", "message"),
    [
        ("consumer", "POST", "/api/keys", "this needs the role admin; the key's role is consumer"),
        (
            "developer",
            "POST",
            "/api/keys/abc/rotate",
            "this needs the role admin; the key's role is developer",
        ),
        ("consumer", "POST", PUBLISH, "this needs the role developer; the key's role is consumer"),
        (
            "validator",
            "POST",
            PUBLISH,
            "this needs the role developer; the key's role is validator",
        ),
        (
            "auditor",
            "POST",
            "/api/jobs",
            "this needs the role developer; the key's role is auditor",
        ),
        (
            "developer",
            "POST",
            "/api/models/tiny/versions/1/approve",
            "this needs the role validator; the key's role is developer",
        ),
        (
            "consumer",
            "PUT",
            "/api/models/tiny/aliases/staging",
            "this needs the role developer; the key's role is consumer",
        ),
    ],
)
def test_a_wrong_role_is_refused_before_the_body(
    served: Settings,
    keys: dict[str, str],
    tiny: Case,
    key: str,
    method: str,
    path: str,
    message: str,
) -> None:
    _register(served, tiny)  # a change to a model the key cannot see is a 404 (below)
    headers = _bearer(keys[key], **{"content-type": "multipart/form-data; boundary=x"})
    headers["content-length"] = HUGE
    answer = _serve(served, lambda app: _call(app, method, path, headers))
    assert (answer.status, answer.body, answer.reads) == (403, {"error": message}, 0)
    assert answer.headers[b"connection"] == b"close"


# -- uploads: streamed, bounded, cleaned up --------------------------------------------


def test_a_change_to_a_model_the_key_cannot_see_is_404_before_the_body(
    served: Settings, keys: dict[str, str]
) -> None:
    headers = _bearer(keys["developer"], **{"content-type": "application/json"})
    headers["content-length"] = HUGE
    path = "/api/models/tiny/versions/1/approve"
    answer = _serve(served, lambda app: _call(app, "POST", path, headers))
    assert (answer.status, answer.body, answer.reads) == (
        404,
        {"error": "model 'tiny' not found"},
        0,
    )


def _register(settings: Settings, case: Case) -> None:
    registry = Registry.open(settings)
    try:
        publish_bytes(
            registry,
            LocalArtifactStore(settings.resolved_artifacts_dir),
            "tiny",
            case.data,
            filename="tiny.txt",
            signature=case.signature,
            actor=local_actor(),
        )
    finally:
        registry.close()


def test_a_developer_publishes_a_multipart_upload_and_the_spool_is_removed(
    served: Settings, keys: dict[str, str], tiny: Case
) -> None:
    headers, body = _multipart(_publish_parts(tiny, metrics={"auc": 0.8}), keys["developer"])
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    seen: list[int] = []

    async def scenario(app: FinmaasApp) -> tuple[Answer, Answer]:
        hold = asyncio.Event()
        upload = asyncio.create_task(_call(app, "POST", PUBLISH, headers, chunks, hold=hold))
        await _until(lambda: len(_spooled(served)) == 1)  # the upload waits for its body
        (folder,) = _spooled(served)
        seen.append(stat.S_IMODE(folder.stat().st_mode))
        hold.set()
        published = await upload
        stranger_headers, _ = _multipart(_publish_parts(tiny), keys["stranger"])
        stranger = await _call(app, "POST", PUBLISH, stranger_headers)  # body never sent
        return published, stranger

    published, stranger = _serve(served, scenario)
    assert published.status == 201, published.body
    assert published.body["model"] == "tiny"
    assert published.body["artifact_format"] == "lightgbm"
    assert published.body["artifact_size"] == len(tiny.data)
    assert seen == [0o700]
    assert _spooled(served) == []  # removed when the request ended
    # Another tenant's developer learns it from the headers alone.
    assert (stranger.status, stranger.body, stranger.reads) == (
        409,
        {"error": "model name 'tiny' is not available; choose another"},
        0,
    )


def test_uploads_beyond_the_bound_are_refused_before_their_body(
    served: Settings, keys: dict[str, str], tiny: Case
) -> None:
    headers, body = _multipart(_publish_parts(tiny), keys["developer"])

    async def scenario(app: FinmaasApp) -> tuple[list[Answer], Answer, Answer]:
        hold = asyncio.Event()
        started = [
            asyncio.create_task(
                _call(app, "POST", f"/api/models/m{i}/versions", headers, body, hold=hold)
            )
            for i in range(2)
        ]
        await _until(lambda: len(_spooled(served)) == 2)  # both uploads are receiving
        refused = await _call(app, "POST", "/api/models/m2/versions", headers, body)
        hold.set()
        done = list(await asyncio.gather(*started))
        after = await _call(app, "POST", "/api/models/m3/versions", headers, body)
        return done, refused, after

    done, refused, after = _serve(served, scenario)
    assert [answer.status for answer in done] == [201, 201]
    assert (refused.status, refused.body, refused.reads) == (
        503,
        {
            "error": "this server is receiving 2 uploads already (max_concurrent_uploads); "
            "retry in a moment"
        },
        0,
    )
    assert refused.headers[b"retry-after"] == b"1"
    assert b"connection" not in refused.headers  # a small body: the server drops it
    assert after.status == 201  # the slots were given back


def test_an_upload_over_the_limit_is_413(served: Settings, keys: dict[str, str]) -> None:
    declared = _bearer(
        keys["developer"],
        **{"content-type": "multipart/form-data; boundary=x", "content-length": HUGE},
    )
    parts = {"artifact": ("model.txt", b"x" * (MAX_UPLOAD + 1), "application/octet-stream")}
    headers, body = _multipart(parts, keys["developer"])
    del headers["content-length"]  # sent chunked: found out while it arrives
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    async def scenario(app: FinmaasApp) -> tuple[Answer, Answer]:
        return (
            await _call(app, "POST", PUBLISH, declared),
            await _call(app, "POST", PUBLISH, {**headers, "transfer-encoding": "chunked"}, chunks),
        )

    before, during = _serve(served, scenario)
    assert (before.status, before.body, before.reads) == (
        413,
        {"error": f"request body is {HUGE} bytes; the limit is {MAX_UPLOAD}"},
        0,
    )
    assert (during.status, during.body) == (
        413,
        {"error": f"request body is over the {MAX_UPLOAD} byte limit"},
    )
    assert during.headers[b"connection"] == b"close"
    assert _spooled(served) == []


def test_other_api_bodies_are_bounded_by_the_small_limit(
    served: Settings, keys: dict[str, str], tiny: Case
) -> None:
    size = MAX_BODY + 1
    key_body = _bearer(keys["admin"], **{"content-type": "application/json"})
    key_body["content-length"] = str(size)
    json_publish = _bearer(keys["developer"], **{"content-type": "application/json"})
    json_publish["content-length"] = str(size)
    multipart_keys, multipart_body = _multipart(_publish_parts(tiny), keys["admin"])

    async def scenario(app: FinmaasApp) -> list[Answer]:
        return [
            await _call(app, "POST", "/api/keys", key_body),
            await _call(app, "POST", PUBLISH, json_publish),
            await _call(app, "POST", "/api/keys", multipart_keys, multipart_body),
        ]

    keys_answer, json_answer, multipart_answer = _serve(served, scenario)
    assert (keys_answer.status, keys_answer.body, keys_answer.reads) == (
        413,
        {"error": f"request body is {size} bytes; the limit is {MAX_BODY}"},
        0,
    )
    assert (json_answer.status, json_answer.body) == (
        413,
        {
            "error": f"request body is {size} bytes; the limit is {MAX_BODY}; send the file as "
            f"multipart/form-data, up to {MAX_UPLOAD} bytes"
        },
    )
    # Only the upload routes take multipart bodies.
    shown = multipart_keys["content-type"]
    assert (multipart_answer.status, multipart_answer.body) == (
        415,
        {"error": f"content type {shown!r} is not supported; send application/json"},
    )


def _bad(case: Case) -> list[Any]:
    signature = orjson.loads(case.signature.to_json())
    meta = ("metadata", (None, orjson.dumps({"signature": signature}), "application/json"))
    file = ("artifact", ("model.txt", case.data, "application/octet-stream"))
    return [
        (
            dict([file]),
            400,
            "the 'metadata' part is required: a JSON object of the upload's fields",
        ),
        (dict([meta]), 400, "the 'artifact' part is required: the model file"),
        (
            {
                "metadata": (None, b'{"metrics": {"auc": NaN}}', "application/json"),
                "artifact": file[1],
            },
            400,
            "the 'metadata' part: NaN and Infinity are not numbers JSON allows; send null for a "
            "missing value (accepted where the signature marks the field nullable)",
        ),
        (
            {"metadata": (None, b"[1]", "application/json"), "artifact": file[1]},
            400,
            "the 'metadata' part must be a JSON object",
        ),
        (
            {
                "metadata": (None, orjson.dumps({"signature": signature, "artifact": "eA=="}), "x"),
                "artifact": file[1],
            },
            400,
            "unknown field 'artifact' in the 'metadata' part; allowed: description, "
            "explain_reference, filename, format, metrics, model_card, owner, params, "
            "parent_version, reason_codes, reference, reference_target, signature, tags",
        ),
        (
            {**dict([meta, file]), "model": ("m.txt", b"x", "text/plain")},
            400,
            "unknown part 'model'; allowed: artifact, metadata",
        ),
        (
            {"metadata": (None, b" " * (MAX_BODY + 1), "application/json"), "artifact": file[1]},
            413,
            f"the 'metadata' part is over the {MAX_BODY} byte limit",
        ),
    ]


def test_bad_multipart_uploads_are_refused_naming_the_part(
    served: Settings, keys: dict[str, str], tiny: Case
) -> None:
    cases = _bad(tiny)
    requests = [_multipart(files, keys["developer"]) for files, _, _ in cases]
    headers, body = _multipart(_publish_parts(tiny), keys["developer"])
    boundary = headers["content-type"].split("boundary=")[1]
    twice = body.replace(f"--{boundary}--".encode(), b"")
    twice += body[body.index(f"--{boundary}".encode()) :]
    extra = [
        (
            {**headers, "content-length": str(len(twice))},
            twice,
            400,
            "part 'metadata' is sent twice",
        ),
        (
            {**headers, "content-length": str(len(body) - 10)},
            body[:-10],
            400,
            "the multipart body ended before its closing boundary",
        ),
        (
            {**headers, "content-type": "multipart/form-data"},
            body,
            400,
            "multipart/form-data needs a 'boundary' parameter in Content-Type",
        ),
    ]

    async def scenario(app: FinmaasApp) -> list[Answer]:
        answers = [await _call(app, "POST", PUBLISH, h, b) for h, b in requests]
        return answers + [await _call(app, "POST", PUBLISH, h, b) for h, b, _, _ in extra]

    answers = _serve(served, scenario)
    expected = [(status, {"error": message}) for _, status, message in cases]
    expected += [(status, {"error": message}) for _, _, status, message in extra]
    assert [(a.status, a.body) for a in answers] == expected
    assert _spooled(served) == []


def test_a_job_upload_names_its_missing_or_unknown_parts(
    served: Settings, keys: dict[str, str]
) -> None:
    meta = orjson.dumps({"template": "credit", "options": {"name": "loans"}})
    missing = _multipart({"metadata": (None, meta, "application/json")}, keys["developer"])
    unknown = _multipart(
        {
            "metadata": (None, meta, "application/json"),
            "artifact": ("loans.csv", b"a,b\n1,2\n", "text/csv"),
        },
        keys["developer"],
    )
    inline = _multipart(
        {
            "metadata": (None, orjson.dumps({"template": "credit", "data": "YQ=="}), "x"),
            "data": ("loans.csv", b"a,b\n1,2\n", "text/csv"),
        },
        keys["developer"],
    )

    async def scenario(app: FinmaasApp) -> list[Answer]:
        return [await _call(app, "POST", "/api/jobs", h, b) for h, b in (missing, unknown, inline)]

    answers = _serve(served, scenario)
    assert [(a.status, a.body) for a in answers] == [
        (400, {"error": "the 'data' part is required: the CSV or Parquet file"}),
        (400, {"error": "unknown part 'artifact'; allowed: data, metadata"}),
        (
            400,
            {
                "error": "unknown field 'data' in the 'metadata' part; allowed: filename, "
                "options, template"
            },
        ),
    ]
    assert _spooled(served) == []
