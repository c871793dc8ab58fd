"""Large bodies against a real server (uvicorn with httptools): a client without a key
costs its headers only, and the SDK streams its uploads."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import orjson
import pytest

from finmaas.client import Client
from finmaas.config import Settings
from finmaas.errors import Unauthenticated
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.guard import MISSING_KEY
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import copy_home
from tests.integration.serving.live import LiveServer, start_server, stop_server

BODY = 200 * 1024 * 1024
CHUNK = 1024 * 1024
PATHS = ("/api/keys", "/api/models/credit-risk/versions", "/v1/models/credit-risk:predict")


@pytest.fixture(scope="module")
def secured(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    settings = copy_home(served_home, tmp_path_factory.mktemp("uploads"))
    registry = Registry.open(settings)
    try:
        token = issue_key(KeyStore(registry), name="dev", role="developer", actor="local:t").token
    finally:
        registry.close()
    live = start_server(settings, auth=True)
    try:
        yield live, token
    finally:
        stop_server(live)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def _send_body(sock: socket.socket) -> int:
    """Send up to ``BODY`` bytes; how many went before the server's close stopped it."""
    sent, chunk = 0, b"x" * CHUNK
    sock.settimeout(10)
    try:
        while sent < BODY:
            sock.sendall(chunk)
            sent += CHUNK
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def test_bodies_without_a_key_cost_their_headers_only(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    port = urlparse(server.url).port
    assert port is not None
    before = _rss(server.process.pid)
    sockets = []
    for path in PATHS:  # three at once, each announcing 200 MiB
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: finmaas\r\ncontent-type: application/json\r\n"
            f"content-length: {BODY}\r\n\r\n".encode()
        )
        sockets.append(sock)
    try:
        # Each answer arrives before one byte of its body was sent.
        answers = [_read_answer(sock) for sock in sockets]
        for status, headers, body in answers:
            assert (status, orjson.loads(body)) == (401, {"error": MISSING_KEY})
            assert headers["connection"] == "close"
        # The server closed each connection: the body cannot be pushed into it.
        sent = [_send_body(sock) for sock in sockets]
        assert all(count < BODY // 4 for count in sent), sent
    finally:
        for sock in sockets:
            sock.close()
    grown = _rss(server.process.pid) - before
    assert grown < 32 * 1024 * 1024, f"the server grew by {grown} bytes"


def test_a_streamed_body_without_a_key_gets_its_401(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    produced = 0

    def body() -> Iterator[bytes]:
        nonlocal produced
        chunk = b"x" * CHUNK
        while produced < BODY:
            produced += CHUNK
            yield chunk

    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(
            "/api/keys",
            content=body(),
            headers={"content-type": "application/json", "content-length": str(BODY)},
        )
    assert (answer.status_code, answer.json()) == (401, {"error": MISSING_KEY})
    assert produced < BODY // 4, produced


def test_the_sdk_streams_a_publish_and_a_bad_key_is_told_so(
    secured: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, token = secured
    registry = Registry.open(server.settings)
    try:
        version = registry.get_version("credit-risk", 1)
    finally:
        registry.close()
    model = tmp_path / "model.txt"
    model.write_bytes(
        LocalArtifactStore(server.settings.resolved_artifacts_dir).read(version.artifact_digest)
    )
    with Client(server.url, api_key=token) as client:
        published = client.publish("credit-risk", model, version.signature, parent_version=1)
    assert (published["model"], published["artifact_digest"]) == (
        "credit-risk",
        version.artifact_digest,
    )
    big = tmp_path / "big.txt"
    with big.open("wb") as out:  # larger than every socket buffer on the way
        out.truncate(64 * 1024 * 1024)
    with (
        Client(server.url, api_key="fmk_0123456789abcdef_nope") as stranger,
        pytest.raises(Unauthenticated) as refused,
    ):
        stranger.publish("credit-risk", big, version.signature)
    assert str(refused.value) == "invalid API key"
    spool = server.settings.home / "uploads"
    assert spool.is_dir()
    assert not list(spool.iterdir())  # every spooled upload was removed


def test_the_sdk_sends_a_metadata_part_and_the_file_part(tmp_path: Path) -> None:
    data = tmp_path / "loans.csv"
    data.write_bytes(b"a,b\n1,2\n")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(201, json={"id": "j1"})

    with Client("http://finmaas", transport=httpx.MockTransport(answer)) as client:
        assert client.train("credit", data, name="loans", target="b") == {"id": "j1"}
    (request,) = seen
    assert request.url.path == "/api/jobs"
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=")[1].encode()
    parts = request.content.split(b"--" + boundary)[1:-1]
    assert parts[0] == (
        b'\r\nContent-Disposition: form-data; name="metadata"\r\n'
        b"Content-Type: application/json\r\n\r\n"
        + orjson.dumps(
            {
                "template": "credit",
                "filename": "loans.csv",
                "options": {"name": "loans", "target": "b"},
            }
        )
        + b"\r\n"
    )
    assert parts[1] == (
        b'\r\nContent-Disposition: form-data; name="data"; filename="loans.csv"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\na,b\n1,2\n\r\n"
    )
