"""Versions of kind ``llm`` backed by an endpoint: ``finmaas models push NAME --endpoint
URL`` against a real upstream (llama.cpp's OpenAI server on 127.0.0.1), with exact
messages, the check recorded, and the credential's value nowhere but in the request
to the upstream."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.errors import NotSupported
from finmaas.publish.loading import load_artifact
from finmaas.registry import LocalArtifactStore, Registry
from tests.approvals import approve
from tests.integration.cli.conftest import Cli, Result
from tests.integration.serving.live import free_port
from tests.llm.engine import LlamaServer

MARKER = "sk-marker-4f1c9e0d7b2a"
"""The upstream key's value: it must appear in no output, row, file or log."""
KEY_VAR = "FINMAAS_UPSTREAM_TEST_KEY"


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Cli:
    base = ["--home", str(settings.home), "--database-url", settings.resolved_database_url]

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([*base, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _push(cli: Cli, url: str, *extra: str, name: str = "memo-llm", model: str = "tiny-llama"):
    return cli("models", "push", name, "--endpoint", url, "--upstream-model", model, *extra)


def _version(cli: Cli, ref: str = "1", name: str = "memo-llm") -> dict[str, object]:
    shown = cli("models", "show", name, "--version", ref, "--json")
    assert shown.code == 0, shown.err
    found: dict[str, object] = orjson.loads(shown.out)
    return found


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def test_a_push_checks_the_upstream_records_the_check_and_never_keeps_the_key(
    cli: Cli,
    llama_server: LlamaServer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_VAR, MARKER)
    caplog.set_level(logging.DEBUG)
    outputs = []
    pushed = _push(
        cli,
        llama_server.base_url + "/",
        "--credential",
        f"env:{KEY_VAR}",
        "--price-prompt",
        "0.50",
        "--price-completion",
        "1.5",
        "--context-length",
        "512",
        "--param",
        "temperature=0.2",
        "--param",
        "max_tokens=64",
        "--description",
        "Summarises credit memos",
    )
    outputs.append(pushed)
    assert pushed.code == 0, pushed.err
    lines = pushed.out.splitlines()
    assert lines[0].startswith(
        f"published memo-llm@1 (llm endpoint {llama_server.base_url}, model 'tiny-llama', sha256:"
    )
    assert lines[1].startswith("upstream checked: ok in ")
    assert lines[1].endswith(" ms, it answered as model 'tiny-llama'")

    version = _version(cli)
    outputs.append(cli("models", "show", "memo-llm", "--version", "1", "--json"))
    assert version["artifact_format"] == "llm-endpoint"
    assert version["signature_json"]["task"] == "llm"  # type: ignore[index]
    params = version["params"]
    assert params["endpoint"] == {  # type: ignore[index]
        "format_version": 1,
        "url": llama_server.base_url,
        "upstream_model": "tiny-llama",
        "credential": f"env:{KEY_VAR}",
        "price_prompt": "0.5",
        "price_completion": "1.5",
        "context_length": 512,
        "params": {"max_tokens": 64, "temperature": 0.2},
    }
    check = params["upstream_check"]  # type: ignore[index]
    assert (check["status"], check["reported_model"], check["listed_models"]) == (
        "ok",
        "tiny-llama",
        ["tiny-llama"],
    )
    assert version["metrics"]["upstream_latency_ms"] == check["latency_ms"]  # type: ignore[index]

    listed = orjson.loads(cli("models", "list", "--json").out)
    assert [(m["name"], m["task"]) for m in listed] == [("memo-llm", "llm")]

    card = cli("models", "card", "memo-llm")
    outputs.append(card)
    assert card.out.startswith("# Model card: memo-llm\n\nSummarises credit memos\n")
    for line in (
        f"- base URL: `{llama_server.base_url}`",
        "- upstream model: `tiny-llama`",
        f"- credential: `env:{KEY_VAR}` (a reference; the key is not stored)",
        "- context length: 512",
        "- default parameters: max_tokens=64, temperature=0.2",
        "- per million prompt tokens: 0.5",
        "- per million completion tokens: 1.5",
    ):
        assert line in card.out
    assert "At push the upstream listed `tiny-llama` and completed one token in " in card.out

    verified = cli("models", "verify", "memo-llm")
    assert verified.out == "memo-llm@1: sha256 verified, an llm endpoint spec\n"
    outputs.append(cli("audit", "list", "--json"))
    outputs.append(cli("models", "diff", "memo-llm", "1", "1"))

    for result in outputs:
        assert MARKER not in result.out + result.err
    assert MARKER not in caplog.text
    assert MARKER not in _every_row(settings)
    for path in Path(settings.resolved_artifacts_dir).rglob("*"):
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes()
    for path in Path(settings.home).rglob("*"):
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes(), path


def _every_row(settings: Settings) -> str:
    """Every row of every table of the registry's database, as text."""
    engine = sa.create_engine(settings.resolved_database_url)
    try:
        found = []
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                found += [
                    str(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
                ]
        return "\n".join(found)
    finally:
        engine.dispose()


def test_a_dead_upstream_refuses_the_push_naming_the_url(cli: Cli, settings: Settings) -> None:
    url = _dead_url()
    refused = _push(cli, url)
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == f"error: upstream {url}/models: cannot connect (connection refused)\n"
    assert cli("models", "list", "--json").out.strip() == "[]"
    artifacts = Path(settings.resolved_artifacts_dir)
    assert not artifacts.exists() or not [p for p in artifacts.rglob("*") if p.is_file()]


def test_a_model_the_upstream_does_not_list_refuses_the_push(
    cli: Cli, llama_server: LlamaServer
) -> None:
    refused = _push(cli, llama_server.base_url, model="gpt-4o")
    assert refused.code == 1
    assert refused.err == (
        f"error: upstream {llama_server.base_url}/models does not list model 'gpt-4o' "
        "(it lists: tiny-llama)\n"
    )


def test_a_wrong_path_refuses_the_push_with_the_http_status(
    cli: Cli, llama_server: LlamaServer
) -> None:
    refused = _push(cli, llama_server.url + "/nowhere")
    assert refused.code == 1
    assert refused.err.startswith(
        f"error: upstream {llama_server.url}/nowhere/models answered HTTP 404"
    )


def test_no_check_registers_an_endpoint_that_is_not_up_yet(cli: Cli) -> None:
    url = _dead_url()
    pushed = _push(cli, url, "--no-check")
    assert pushed.code == 0, pushed.err
    assert pushed.out.splitlines()[1] == "upstream not checked at push (--no-check)"
    version = _version(cli)
    assert version["params"]["upstream_check"] == {"status": "unchecked"}  # type: ignore[index]
    assert "upstream_latency_ms" not in version["metrics"]  # type: ignore[operator]
    assert (
        "Not checked at push (registered with --no-check)." in cli("models", "card", "memo-llm").out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--endpoint", "ftp://gpu-node/v1"),
            "the endpoint URL must be http or https, not 'ftp'",
        ),
        (
            ("--endpoint", "http://user:s3cret@gpu-node:8000/v1"),
            "the endpoint URL must not carry a user or password; "
            "pass the secret with --credential env:VAR or file:PATH",
        ),
        (("--endpoint", "http:///v1"), "the endpoint URL has no host"),
        (
            ("--endpoint", "http://gpu-node/v1?key=1"),
            "the endpoint URL must not have a query or a fragment",
        ),
        (
            ("--price-prompt", "-1"),
            "the price per million prompt tokens must be a non-negative decimal up to "
            "1000000, got '-1'",
        ),
        (
            ("--price-completion", "cheap"),
            "the price per million completion tokens must be a non-negative decimal, got 'cheap'",
        ),
        (
            ("--param", "frequency_penalty=1"),
            "unknown parameter 'frequency_penalty'; allowed: max_tokens, temperature, top_p",
        ),
        (("--param", "temperature=3"), "temperature must be from 0 to 2, got 3"),
        (("--param", "top_p=0"), "top_p must be above 0 to 1, got 0"),
        (
            ("--context-length", "512", "--param", "max_tokens=1000"),
            "max_tokens must be a whole number from 1 to 512, got 1000",
        ),
        (
            ("--context-length", "0"),
            "context length must be a whole number from 1 to 10000000, got 0",
        ),
        (
            ("--credential", "sk-live-abcdef"),
            "a credential must be a reference, env:VAR or file:/absolute/path",
        ),
        (
            ("--credential", "file:relative/key"),
            "a credential must be a reference, env:VAR or file:/absolute/path",
        ),
    ],
)
def test_every_bad_input_is_refused_with_its_rule(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    url = "http://gpu-node:8000/v1"
    if args[0] == "--endpoint":
        refused = cli("models", "push", "m", *args, "--upstream-model", "x", "--no-check")
    else:
        refused = _push(cli, url, *args, "--no-check", name="m", model="x")
    assert (refused.code, refused.err) == (1, f"error: {message}\n")
    assert "s3cret" not in refused.err
    assert "sk-live" not in refused.err


def test_the_push_options_go_together(cli: Cli, tmp_path: Path) -> None:
    assert cli("models", "push", "m", "--endpoint", "http://h/v1").err == (
        "error: --endpoint needs --upstream-model: the model id the upstream serves\n"
    )
    assert cli("models", "push", "m", "--upstream-model", "x").err == (
        "error: --upstream-model describes an --endpoint; pass --endpoint URL\n"
    )
    assert cli("models", "push", "m").err == (
        "error: pass a model FILE and its --signature, or --endpoint URL for an LLM\n"
    )
    file = tmp_path / "model.txt"
    file.write_text("x")
    assert cli("models", "push", "m", str(file), "--endpoint", "http://h/v1").err == (
        "error: --endpoint registers an upstream: pass no FILE and no --signature\n"
    )


def test_a_missing_credential_is_named_not_shown(
    cli: Cli, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    refused = _push(cli, llama_server.base_url, "--credential", f"env:{KEY_VAR}")
    assert refused.err == f"error: credential env:{KEY_VAR}: the variable is not set\n"


def test_diff_promote_with_four_eyes_rollback_and_archive(
    cli: Cli, settings: Settings, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, MARKER)
    monkeypatch.setenv("FINMAAS_UPSTREAM_OTHER", MARKER + "-2")
    url = llama_server.base_url
    assert _push(cli, url, "--credential", f"env:{KEY_VAR}", "--price-prompt", "0.5").code == 0
    second = _push(
        cli,
        url,
        "--credential",
        "env:FINMAAS_UPSTREAM_OTHER",
        "--price-prompt",
        "0.7",
        "--price-completion",
        "2",
        "--param",
        "temperature=0",
    )
    assert second.code == 0, second.err

    diff = cli("models", "diff", "memo-llm", "1", "2")
    assert diff.code == 0, diff.err
    changes = [line for line in diff.out.splitlines() if line.startswith("changed ")]
    assert changes == [
        "changed credential: env:FINMAAS_UPSTREAM_TEST_KEY → env:FINMAAS_UPSTREAM_OTHER",
        "changed price prompt: 0.5 → 0.7",
        "changed price completion: — → 2",
        "changed parameters: — → temperature=0.0",
    ]
    assert MARKER not in diff.out

    refused = cli("models", "promote", "memo-llm", "2")
    assert refused.code == 1
    assert refused.err.startswith(
        "error: alias 'production' of model 'memo-llm' is protected: version 2 needs an "
        "approval by a validator"
    )
    registry = Registry.open(settings)
    try:
        approve(registry, "memo-llm", 1, 2)
    finally:
        registry.close()
    assert cli("models", "promote", "memo-llm", "1").out == "memo-llm@production → version 1\n"
    assert cli("models", "promote", "memo-llm", "2").out == (
        "memo-llm@production → version 2 (was 1)\n"
    )
    assert _version(cli, "production")["version"] == 2
    assert cli("models", "rollback", "memo-llm").out == (
        "memo-llm@production → version 1 (rolled back from 2)\n"
    )
    assert cli("models", "archive", "memo-llm", "--version", "2").out == "archived memo-llm@2\n"


def test_the_tabular_data_plane_refuses_an_endpoint_version(cli: Cli, settings: Settings) -> None:
    assert _push(cli, _dead_url(), "--no-check").code == 0
    registry = Registry.open(settings)
    try:
        version = registry.get_version("memo-llm", 1)
    finally:
        registry.close()
    store = LocalArtifactStore(settings.resolved_artifacts_dir)
    with pytest.raises(NotSupported) as refused:
        load_artifact(store, version)
    assert str(refused.value) == (
        "this version is an LLM endpoint (llm-endpoint): it is served by the OpenAI-"
        "compatible routes, not by the tabular data plane (predict, V1, V2, MLflow, gRPC)"
    )


def test_a_push_through_a_server_is_checked_there_and_keeps_only_the_reference(
    llama_server: LlamaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``finmaas --server URL models push … --endpoint``: the developer's key publishes, the
    server resolves an ``env:FINMAAS_UPSTREAM_*`` reference and checks the upstream."""
    from finmaas.registry.key_store import KeyStore
    from finmaas.security.key_secrets import issue_key
    from tests.integration.serving.live import start_server, stop_server

    settings = Settings(home=tmp_path / "home")
    registry = Registry.open(settings)
    try:
        token = issue_key(
            KeyStore(registry), name="dana", role="developer", actor="local:setup"
        ).token
    finally:
        registry.close()
    server = start_server(settings, auth=True, env={KEY_VAR: MARKER})
    try:
        monkeypatch.setenv("FINMAAS_API_KEY", token)

        def remote(*args: str) -> Result:
            capsys.readouterr()
            code = main(["--server", server.url, *args])
            captured = capsys.readouterr()
            return Result(code, captured.out, captured.err)

        refused = remote(
            "models", "push", "memo-llm", "--endpoint", llama_server.base_url,
            "--upstream-model", "tiny-llama", "--credential", "file:/etc/hostname",
        )  # fmt: skip
        assert (refused.code, refused.err) == (
            1,
            "error: over /api a credential must be env:FINMAAS_UPSTREAM_<NAME>, a variable the "
            "server's operator set for upstreams; other variables and files stay on the server "
            "(register such an endpoint with the local CLI there)\n",
        )
        pushed = remote(
            "models", "push", "memo-llm", "--endpoint", llama_server.base_url,
            "--upstream-model", "tiny-llama", "--credential", f"env:{KEY_VAR}",
        )  # fmt: skip
        assert pushed.code == 0, pushed.err
        assert pushed.out.startswith(
            f"published memo-llm@1 (llm endpoint {llama_server.base_url}, model 'tiny-llama', "
        )
        shown = remote("models", "show", "memo-llm", "--version", "1", "--json")
        params = orjson.loads(shown.out)["params"]
        assert params["endpoint"]["credential"] == f"env:{KEY_VAR}"
        assert params["upstream_check"]["status"] == "ok"
        for text in (refused.out, refused.err, pushed.out, pushed.err, shown.out):
            assert MARKER not in text
            assert token not in text
    finally:
        stop_server(server)
    assert MARKER not in server.log.read_text()
