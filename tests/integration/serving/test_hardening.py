"""Security headers and CORS (off unless configured) with the app in process, and TLS on
a real server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from tests.integration.serving.homes import APPLICANT, copy_home
from tests.integration.serving.in_process import InProcessServer, serve_in_process
from tests.integration.serving.live import start_server, stop_server

PREDICT = "/v1/models/credit-risk:predict"
BODY = {"instances": APPLICANT[:1]}
APP = "https://app.bank.example"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.fixture(scope="module")
def secured(
    served_home: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InProcessServer, str]]:
    settings = copy_home(served_home, tmp_path_factory.mktemp("hardened"))
    registry = Registry.open(settings)
    try:
        token = issue_key(KeyStore(registry), name="app", role="consumer", actor="local:t").token
    finally:
        registry.close()
    served = serve_in_process(settings, auth=True, cors_origins=APP)
    try:
        yield served, token
    finally:
        served.close()


def test_every_response_carries_the_security_headers(secured: tuple[InProcessServer, str]) -> None:
    server, token = secured
    auth = {"authorization": f"Bearer {token}"}
    with server.client() as http:
        responses = {
            "ok": http.post(PREDICT, json=BODY, headers=auth),
            "unauthenticated": http.post(PREDICT, json=BODY),
            "not found": http.get("/nowhere", headers=auth),
            "bad request": http.post(PREDICT, json={"rows": []}, headers=auth),
            "too large": http.post(PREDICT, content=b" " * (8 * 1024 * 1024 + 1), headers=auth),
            "probe": http.get("/v2/health/ready"),
        }
    assert {name: r.status_code for name, r in responses.items()} == {
        "ok": 200,
        "unauthenticated": 401,
        "not found": 404,
        "bad request": 400,
        "too large": 413,
        "probe": 200,
    }
    for name, response in responses.items():
        shown = {key: response.headers.get(key) for key in SECURITY_HEADERS}
        assert shown == SECURITY_HEADERS, name


def test_a_configured_origin_may_call_and_read(secured: tuple[InProcessServer, str]) -> None:
    server, token = secured
    with server.client() as http:
        preflight = http.options(
            PREDICT,
            headers={
                "origin": APP,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == APP
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        assert preflight.headers["vary"] == "origin"

        call = http.post(
            PREDICT, json=BODY, headers={"origin": APP, "authorization": f"Bearer {token}"}
        )
        assert call.status_code == 200
        assert call.headers["access-control-allow-origin"] == APP
        assert "retry-after" in call.headers["access-control-expose-headers"]

        refused = http.post(PREDICT, json=BODY, headers={"origin": APP})
        assert refused.status_code == 401  # CORS does not replace the key
        assert refused.headers["access-control-allow-origin"] == APP


def test_another_origin_gets_no_cors_headers(secured: tuple[InProcessServer, str]) -> None:
    server, token = secured
    evil = "https://evil.example"
    with server.client() as http:
        preflight = http.options(
            PREDICT, headers={"origin": evil, "access-control-request-method": "POST"}
        )
        call = http.post(
            PREDICT, json=BODY, headers={"origin": evil, "authorization": f"Bearer {token}"}
        )
    assert preflight.status_code == 401  # not a preflight it answers: an unauthenticated call
    assert call.status_code == 200  # servers cannot stop the call; browsers stop the read
    for response in (preflight, call):
        assert not [h for h in response.headers if h.startswith("access-control-")]


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    preflight = client.options(
        PREDICT, headers={"origin": APP, "access-control-request-method": "POST"}
    )
    call = client.post(PREDICT, json=BODY, headers={"origin": APP})
    assert (preflight.status_code, preflight.json()) == (
        404,
        {"error": f"no route for OPTIONS {PREDICT}"},
    )
    assert call.status_code == 200
    for response in (preflight, call):
        assert not [h for h in response.headers if h.startswith("access-control-")]


@pytest.mark.parametrize(
    ("origin", "shown"),
    [("*", "'*'"), ("https://app.example/", "'https://app.example/'"), ("app.example", None)],
)
def test_a_wildcard_or_malformed_origin_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], origin: str, shown: str | None
) -> None:
    code = main(["--home", str(tmp_path / "home"), "serve", "--cors-origin", origin])
    err = capsys.readouterr().err
    assert code == 1
    expected = shown or repr(origin)
    assert err == (
        "error: invalid setting cors_origins (FINMAAS_CORS_ORIGINS): Value error, "
        f"{expected} is not an origin like https://app.bank.example[:port] "
        "(scheme and host only; no wildcard, path or trailing slash)\n"
    )


def test_tls(served_home: Settings, tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    certificate.private_key_pem.write_to_path(str(key_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)

    live = start_server(
        copy_home(served_home, tmp_path),
        "--ssl-certfile",
        str(cert_file),
        "--ssl-keyfile",
        str(key_file),
        scheme="https",
        verify=trusted,
    )
    try:
        assert live.url.startswith("https://")
        with httpx.Client(base_url=live.url, verify=trusted, timeout=10) as https:
            assert https.post(PREDICT, json=BODY).status_code == 200
        with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused
            httpx.get(f"{live.url}/v2/health/live", timeout=5)
        plain = live.url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):  # and plain HTTP is not served
            httpx.get(f"{plain}/v2/health/live", timeout=5)
    finally:
        stop_server(live)


def test_tls_needs_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("not used")
    code = main(["--home", str(tmp_path / "home"), "serve", "--ssl-certfile", str(cert)])
    assert code == 2
    assert "give both --ssl-certfile and --ssl-keyfile, or neither" in capsys.readouterr().err
