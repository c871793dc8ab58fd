"""The CLI against a real server with a key (``--server``, ``FINMAAS_API_KEY``), and the
SDK's promotion calls: four-eyes from one machine, each person with their own key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from finmaas.cli.main import main
from finmaas.client import Client
from finmaas.config import Settings
from finmaas.errors import Forbidden, NotFound
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyStore
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant
from tests.integration.cli.conftest import SIGNATURE, Result
from tests.integration.serving.live import start_server, stop_server

RemoteCli = Callable[..., Result]
NOTE = "back-test and stability reviewed"
KEYS = {  # name: role, tenant, grant
    "admin": ("admin", "default", None),
    "developer": ("developer", "default", None),
    "validator": ("validator", "default", None),
    "outsider": ("validator", "other", "*:metadata"),
}


@dataclass
class Remote:
    url: str
    settings: Settings
    secrets: dict[str, str]
    ids: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    """Every stdout and stderr the CLI wrote, to check no key is in them."""


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    settings = Settings(home=tmp_path_factory.mktemp("remote") / "home")
    registry = Registry.open(settings)
    try:
        secrets, ids = {}, {}
        for name, (role, tenant, grant) in KEYS.items():
            issued = issue_key(
                KeyStore(registry),
                name=name,
                role=role,
                tenant=tenant,
                grants=(parse_grant(grant),) if grant else (),
                actor="local:setup",
            )
            secrets[name], ids[name] = issued.token, issued.record.id
    finally:
        registry.close()
    server = start_server(settings, auth=True)
    try:
        yield Remote(server.url, settings, secrets, ids)
    finally:
        stop_server(server)


@pytest.fixture
def as_key(
    remote: Remote, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RemoteCli]:
    """``as_key(name, *args)``: the CLI with ``--server`` and that key in FINMAAS_API_KEY."""

    def run(name: str, *args: str) -> Result:
        monkeypatch.setenv("FINMAAS_API_KEY", remote.secrets[name])
        capsys.readouterr()
        code = main(["--server", remote.url, *args])
        captured = capsys.readouterr()
        remote.outputs += [captured.out, captured.err]
        return Result(code, captured.out, captured.err)

    yield run
    for text in remote.outputs:
        for secret in remote.secrets.values():
            assert secret not in text
            assert secret.rsplit("_", 1)[1] not in text


def local(remote: Remote, capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """The CLI on the server's own database, as the local admin."""
    capsys.readouterr()
    code = main(["--home", str(remote.settings.home), *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def _author_message(remote: Remote, author: str, name: str, version: int) -> str:
    return (
        f"error: four-eyes rule: key:{remote.ids[author]} registered version {version} "
        f"of model {name!r} and may not approve it. Another validator of tenant 'default' (a "
        "different person) or an admin must approve it with their own key: "
        f"`finmaas --server URL models approve {name} {version} --note …`\n"
    )


def test_four_eyes_from_one_machine(
    remote: Remote,
    as_key: RemoteCli,
    model_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = as_key
    files = [str(model_files["signature"]), "--reference", str(model_files["reference"])]
    pushed = run("developer", "models", "push", "credit", str(model_files["v1"]), "-s", *files)
    assert pushed.code == 0, pushed.err
    assert pushed.out.startswith("published credit@1 (lightgbm, ")

    own = run("developer", "models", "approve", "credit", "1", "--note", NOTE)
    assert (own.code, own.out, own.err) == (
        1,
        "",
        "error: this needs the role validator; the key's role is developer\n",
    )
    admin_pushed = run("admin", "models", "push", "mine", str(model_files["v1"]), "-s", *files)
    assert admin_pushed.code == 0, admin_pushed.err
    own = run("admin", "models", "approve", "mine", "1", "--note", NOTE)
    assert (own.code, own.out, own.err) == (1, "", _author_message(remote, "admin", "mine", 1))

    outsider = run("outsider", "models", "approve", "credit", "1", "--note", NOTE)
    assert (outsider.code, outsider.err) == (
        1,
        "error: model 'credit' belongs to another tenant\n",
    )

    early = run("admin", "models", "promote", "credit", "1")
    assert (early.code, early.err) == (
        1,
        "error: alias 'production' of model 'credit' is protected: version 1 needs an "
        "approval by a validator of tenant 'default' or an admin, other than its author "
        f"(key:{remote.ids['developer']}). Such a validator approves it with their own key "
        "(`finmaas --server URL models approve credit 1 --note …`); then promote it again\n",
    )

    approved = run("validator", "models", "approve", "credit", "1", "--note", NOTE)
    assert (approved.code, approved.err) == (0, "")
    assert approved.out == (
        f"approved credit@1 by key:{remote.ids['validator']}\n"
        "next: an admin promotes it with their own key: "
        f"finmaas --server {remote.url} models promote credit 1 (over the API only an admin "
        "moves a protected alias such as production)\n"
    )
    by_developer = run("developer", "models", "promote", "credit", "1")
    assert (by_developer.code, by_developer.err) == (
        1,
        "error: alias 'production' of model 'credit' is protected; only an admin may move it\n",
    )
    promoted = run("admin", "models", "promote", "credit", "1")
    assert (promoted.code, promoted.out) == (0, "credit@production → version 1\n")

    pushed = run("developer", "models", "push", "credit", str(model_files["v2"]), "-s", *files)
    assert pushed.code == 0, pushed.err
    rejected = run("validator", "models", "reject", "credit", "2", "--note", "unstable")
    assert (rejected.code, rejected.out) == (
        0,
        f"rejected credit@2 by key:{remote.ids['validator']}\n",
    )
    approved = run("validator", "models", "approve", "credit", "2", "--note", NOTE)
    assert approved.code == 0, approved.err
    admin_approves = run("admin", "models", "approve", "credit", "2", "--note", NOTE)
    assert admin_approves.out.endswith(
        f"promote it with: finmaas --server {remote.url} models promote credit 2\n"
    )
    moved = run("admin", "models", "promote", "credit", "2")
    assert (moved.code, moved.out) == (0, "credit@production → version 2 (was 1)\n")
    back = run("admin", "models", "rollback", "credit")
    assert (back.code, back.out) == (0, "credit@production → version 1 (rolled back from 2)\n")

    # the same data prints the same, locally and through the server
    for args in (
        ("models", "list"),
        ("models", "list", "--json"),
        ("models", "show", "credit"),
        ("models", "show", "credit", "--json"),
        ("models", "show", "credit", "--version", "production"),
        ("models", "card", "credit", "--version", "2"),
        ("models", "diff", "credit", "1", "2"),
        ("audit", "list", "--action", "version.*"),
        ("audit", "list", "--json"),
        ("audit", "verify"),
        ("keys", "list"),
        ("keys", "show", remote.ids["validator"], "--json"),
        ("drift", "credit", "--json"),
        ("usage", "--json"),
        ("jobs", "list"),
    ):
        through = run("admin", *args)
        here = local(remote, capsys, *args)
        assert (through.code, through.out, through.err) == (here.code, here.out, here.err), args

    entries = run("admin", "audit", "list", "--action", "version.approve*", "--json")
    assert '"version.approve.refused"' in entries.out
    assert f'"key:{remote.ids["outsider"]}"' in entries.out


def test_keys_over_the_server(remote: Remote, as_key: RemoteCli) -> None:
    run = as_key
    created = run(
        "admin", "keys", "create", "ci-bot", "--role", "consumer", "--json",
        "--tokens-per-minute", "6000", "--monthly-token-quota", "1000000",
    )  # fmt: skip
    assert created.code == 0, created.err
    key_id = created.out.split('"id": "')[1].split('"')[0]
    shown = run("admin", "keys", "show", key_id)
    assert "role:       consumer" in shown.out
    assert "6000 tokens/min" in shown.out
    assert "1000000 tokens/month" in shown.out
    rotated = run("admin", "keys", "rotate", key_id)
    assert rotated.out.startswith(f"rotated key {key_id}; the old secret no longer works. New")
    new_id = rotated.out.split(" key ")[2].split(":")[0]
    revoked = run("admin", "keys", "revoke", new_id)
    assert revoked.out == f"revoked key {new_id} (ci-bot, tenant default)\n"
    refused = run("validator", "keys", "create", "x", "--role", "admin")
    assert (refused.code, refused.err) == (
        1,
        "error: this needs the role admin; the key's role is validator\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade"),
        ("serve",),
        ("quickstart",),
        ("models", "update", "credit", "--owner", "x"),
        ("models", "archive", "credit"),
        ("decisions", "purge", "--yes"),
        ("signature", "infer", "data.csv", "--task", "binary", "--target", "y"),
    ],
)
def test_a_local_only_command_is_refused_against_a_server(
    remote: Remote, as_key: RemoteCli, args: tuple[str, ...]
) -> None:
    run = as_key
    refused = run("admin", *args)
    command = (
        " ".join(args[:2]) if args[0] in ("db", "models", "decisions", "signature") else args[0]
    )
    assert (refused.code, refused.out, refused.err) == (
        1,
        "",
        f"error: 'finmaas {command}' acts on the local database; it cannot run against --server\n",
    )


def test_the_key_on_the_command_line_is_warned_about_and_never_shown(
    remote: Remote, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINMAAS_API_KEY", raising=False)
    secret = remote.secrets["validator"]
    code = main(["--server", remote.url, "--api-key", secret, "keys", "create", "x"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == (
        "warning: --api-key is visible to other users of this machine (ps); prefer the "
        "FINMAAS_API_KEY environment variable\n"
        "error: this needs the role admin; the key's role is validator\n"
    )
    code = main(["--server", remote.url, "--api-key", secret + "x", "--debug", "keys", "list"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.endswith("error: invalid API key\n")
    assert secret.rsplit("_", 1)[1] not in captured.out + captured.err  # not even with --debug
    code = main(["--api-key", secret, "models", "list"])
    captured = capsys.readouterr()
    assert (code, captured.err.splitlines()[-1]) == (
        1,
        "error: --api-key needs --server URL (or FINMAAS_SERVER): the key is for a server",
    )


def test_client_promotion_calls(remote: Remote, model_files: dict[str, Path]) -> None:
    def client(name: str) -> Client:
        return Client(remote.url, api_key=remote.secrets[name])

    with client("developer") as developer:
        published = developer.publish("sdk", model_files["v1"], SIGNATURE)
        assert published["version"] == 1
        with pytest.raises(Forbidden) as own:
            developer.approve("sdk", 1, note=NOTE)
        assert str(own.value) == "this needs the role validator; the key's role is developer"
        developer.publish("sdk", model_files["v2"], SIGNATURE)
        staged = developer.promote("sdk", "staging", 2)
        assert staged == {"model": "sdk", "alias": "staging", "version": 2}
    with client("outsider") as outsider, pytest.raises(Forbidden) as other:
        outsider.approve("sdk", 1, note=NOTE)
    assert str(other.value) == "model 'sdk' belongs to another tenant"
    with client("validator") as validator:
        approval = validator.approve("sdk", 1, note=NOTE)
        assert (approval["model"], approval["version"], approval["decision"]) == (
            "sdk",
            1,
            "approved",
        )
        assert approval["actor"] == f"key:{remote.ids['validator']}"
        rejection = validator.reject("sdk", 2, note="unstable on the 2024 cohort")
        assert rejection["decision"] == "rejected"
        with pytest.raises(NotFound) as missing:
            validator.approve("sdk", 9, note=NOTE)
        assert str(missing.value) == "model 'sdk' has no version 9"
    with client("admin") as admin:
        admin.publish("sdk-admin", model_files["v1"], SIGNATURE)
        with pytest.raises(Forbidden) as author:
            admin.approve("sdk-admin", 1, note=NOTE)
        expected = _author_message(remote, "admin", "sdk-admin", 1)
        assert str(author.value) == expected[len("error: ") : -1]
        assert admin.promote("sdk", "production", 1)["version"] == 1
        with pytest.raises(Forbidden) as unapproved:
            admin.promote("sdk", "production", 2)
        assert str(unapproved.value).startswith(
            "alias 'production' of model 'sdk' is protected: version 2 needs an approval"
        )
        assert admin.promote("sdk", "staging", 1)["version"] == 1
        assert admin.rollback("sdk", "staging") == {
            "model": "sdk",
            "alias": "staging",
            "version": 2,
        }
        assert admin.model("sdk")["aliases"] == {"production": 1, "staging": 2}
        assert [v["version"] for v in admin.versions("sdk")] == [1, 2]
        assert admin.version("sdk", "production")["ref"] == "sdk@1"


def test_the_positive_class_checks_hold_against_a_server(
    remote: Remote, as_key: RemoteCli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    """Labels sent with the reference refuse an inverted model, and a promotion across a
    class change needs --accept-signature-change, through the server as locally."""
    from tests.integration.cli.test_positive_class_cli import INVERTED, _labelled_reference

    run = as_key
    reference, auc = _labelled_reference(tmp_path, model_files["v2"], inverted=True)
    labelled = ["--reference", str(reference), "--target", "creditability"]
    signature = str(model_files["signature"])
    refused = run(
        "developer", "models", "push", "labels", str(model_files["v2"]), "-s", signature, *labelled
    )
    assert (refused.code, refused.err) == (
        1,
        "error: refused: on the 200 labelled reference rows the model's probability of "
        f"'bad' ranks 'bad' below chance (AUC {auc:.3f}, under 0.5); is the positive class "
        "inverted? If the model returns the probability of 'good', declare classes "
        "['bad', 'good'] with positive_class 'good'\n",
    )
    right, right_auc = _labelled_reference(tmp_path, model_files["v2"], inverted=False)
    labelled[1] = str(right)
    pushed = run(
        "developer", "models", "push", "labels", str(model_files["v2"]), "-s", signature, *labelled
    )
    assert pushed.code == 0, pushed.err
    assert pushed.out.endswith(f"AUC of P(bad) on the labelled reference: {right_auc:.3f}\n")

    inverted = tmp_path / "inverted.json"
    inverted.write_bytes(INVERTED.to_json())
    again = run(
        "developer", "models", "push", "labels", str(model_files["v2"]), "-s", str(inverted)
    )
    assert again.code == 0, again.err
    assert run("developer", "models", "promote", "labels", "1", "--alias", "staging").code == 0
    moved = run("developer", "models", "promote", "labels", "2", "--alias", "staging")
    assert (moved.code, moved.err) == (
        1,
        "error: version 2 of model 'labels' changes what alias 'staging' returns (now "
        "version 1): classes order good, bad → bad, good; positive class bad → good. Clients "
        "of 'staging' would read probabilities and labels of another meaning; if that is "
        "intended, accept the change (--accept-signature-change, or "
        '"accept_signature_change": true in the API body)\n',
    )
    accepted = run(
        "developer",
        "models",
        "promote",
        "labels",
        "2",
        "--alias",
        "staging",
        "--accept-signature-change",
    )
    assert (accepted.code, accepted.out) == (0, "labels@staging → version 2 (was 1)\n")
