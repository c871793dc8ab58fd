"""Every change the CLI makes is audited as coming from ``cli`` (issue 21: promote,
rollback and archive said ``local``, other commands ``cli``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from finmaas.config import Settings
from finmaas.monitoring.decision_records import Decision, DecisionStore
from finmaas.registry import Registry
from tests.approvals import approve
from tests.integration.cli.conftest import Cli, as_json

OLD = datetime(2020, 1, 1, tzinfo=UTC)


def _ok(cli: Cli, *args: str) -> str:
    result = cli(*args)
    assert result.code == 0, (args, result.err)
    return result.out


def test_every_audited_cli_action_says_it_came_from_the_cli(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    signature = str(model_files["signature"])
    _ok(cli, "models", "push", "credit", str(model_files["v1"]), "--signature", signature)
    _ok(cli, "models", "push", "credit", str(model_files["v2"]), "--signature", signature)
    registry = Registry.open(settings)
    try:
        approve(registry, "credit")
        DecisionStore(registry).add([_old_decision()])
    finally:
        registry.close()
    _ok(cli, "models", "promote", "credit", "1")
    _ok(cli, "models", "promote", "credit", "1", "--alias", "staging")
    _ok(cli, "models", "update", "credit", "--owner", "risk-team")
    _ok(cli, "models", "promote", "credit", "2")
    _ok(cli, "models", "rollback", "credit")
    _ok(cli, "models", "archive", "credit", "--version", "2")
    created = as_json(_ok(cli, "keys", "create", "app", "--json"))
    key_id = created["key"]["id"]  # type: ignore[index]
    rotated = as_json(_ok(cli, "keys", "rotate", key_id, "--json"))
    _ok(cli, "keys", "revoke", rotated["key"]["id"])  # type: ignore[index]
    _ok(cli, "decisions", "purge", "--yes")
    _ok(cli, "models", "archive", "credit")
    _ok(cli, "models", "purge", "--yes")

    entries = as_json(_ok(cli, "audit", "list", "--limit", "1000", "--json"))
    ours = [e for e in entries if e["actor"].startswith("local:")]  # type: ignore[union-attr]
    actions = {e["action"] for e in ours}
    assert {
        "model.create",
        "version.publish",
        "alias.set",
        "alias.rollback",
        "model.update",
        "version.archive",
        "model.archive",
        "artifact.purge",
        "key.create",
        "key.rotate",
        "key.revoke",
        "decisions.purge",
    } <= actions, actions
    assert {(e["action"], e["origin"]) for e in ours if e["origin"] != "cli"} == set()


def _old_decision() -> Decision:
    return Decision(
        recorded_at=OLD,
        request_id="old",
        row=0,
        subject=None,
        tenant="default",
        model="credit",
        version=1,
        alias="production",
        output=0.5,
        decision="bad",
        reasons=None,
        key_id=None,
    )
