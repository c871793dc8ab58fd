"""``finmaas keys|usage|audit`` and the four-eyes model commands, end to end."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.tables import api_keys, audit_log
from finmaas.registry.usage import UsageRow, UsageStore
from finmaas.security.key_secrets import hash_token
from tests.integration.cli.conftest import Cli, as_json


def _as_user(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """The local CLI acts as ``local:<OS user>``; four-eyes needs two of them."""
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, user)


def _secret(out: str) -> str:
    return out.strip().splitlines()[-1]


# -- keys -----------------------------------------------------------------------


def test_key_secret_is_printed_once_and_stored_only_as_its_hash(
    cli: Cli, registry: Registry
) -> None:
    created = cli(
        "keys",
        "create",
        "team-a",
        "--role",
        "consumer",
        "--tenant",
        "risk",
        "--owner",
        "alice@bank.example",
        "--grant",
        "credit-*:predict",
        "--expires",
        "30d",
        "--requests-per-minute",
        "100",
        "--rows-per-minute",
        "5000",
        "--monthly-quota",
        "1000000",
    )
    assert created.code == 0, created.err
    secret = _secret(created.out)
    assert secret.startswith("fmk_")
    key_id = secret[4:20]
    assert created.out.startswith(f"created key {key_id}: team-a, role consumer, tenant risk\n")

    with registry.read() as conn:
        stored = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().one()
    assert stored["secret_hash"] == hash_token(secret)
    assert secret not in str(dict(stored))

    listed = cli("keys", "list")
    assert listed.code == 0
    assert key_id in listed.out
    assert secret not in listed.out
    shown = cli("keys", "show", key_id, "--json")
    key = as_json(shown.out)
    assert isinstance(key, dict)
    assert secret not in shown.out
    assert "secret_hash" not in key
    assert (key["name"], key["role"], key["tenant"], key["owner"]) == (
        "team-a",
        "consumer",
        "risk",
        "alice@bank.example",
    )
    assert key["grants"] == [{"models": "credit-*", "verbs": ["predict"]}]
    assert (key["requests_per_minute"], key["rows_per_minute"], key["monthly_quota"]) == (
        100,
        5000,
        1000000,
    )
    expires = datetime.fromisoformat(key["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert key["created_by"].startswith("local:")


def test_a_key_with_token_limits_shows_them(cli: Cli) -> None:
    created = cli(
        "keys",
        "create",
        "assistant",
        "--role",
        "consumer",
        "--requests-per-minute",
        "60",
        "--tokens-per-minute",
        "90000",
        "--monthly-token-quota",
        "50000000",
        "--json",
    )
    assert created.code == 0, created.err
    key = as_json(created.out)["key"]  # type: ignore[index,call-overload]
    assert (key["tokens_per_minute"], key["monthly_token_quota"]) == (90000, 50000000)
    assert (key["rows_per_minute"], key["monthly_quota"]) == (None, None)
    shown = cli("keys", "show", key["id"])
    assert shown.code == 0, shown.err
    assert "limits:     60 req/min, 90000 tokens/min, 50000000 tokens/month\n" in shown.out
    again = as_json(cli("keys", "show", key["id"], "--json").out)
    assert isinstance(again, dict)
    assert (again["tokens_per_minute"], again["monthly_token_quota"]) == (90000, 50000000)


def test_revoke_and_rotate(cli: Cli) -> None:
    first = _secret(cli("keys", "create", "svc", "--role", "consumer").out)
    key_id = first[4:20]

    rotated = cli("keys", "rotate", key_id, "--json")
    assert rotated.code == 0, rotated.err
    body = as_json(rotated.out)
    assert isinstance(body, dict)
    new_id = body["key"]["id"]
    assert body["secret"].startswith(f"fmk_{new_id}_")
    assert new_id != key_id
    assert body["key"]["name"] == "svc"

    old = as_json(cli("keys", "show", key_id, "--json").out)
    assert isinstance(old, dict)
    assert old["replaced_by"] == new_id
    assert old["revoked_at"] is not None
    assert [k["id"] for k in as_json(cli("keys", "list", "--json").out)] == [new_id]  # type: ignore[union-attr]
    assert {k["id"] for k in as_json(cli("keys", "list", "--all", "--json").out)} == {  # type: ignore[union-attr]
        key_id,
        new_id,
    }

    again = cli("keys", "rotate", key_id)
    assert (again.code, again.err) == (
        1,
        f"error: key {key_id} is revoked; create a new one instead\n",
    )
    revoked = cli("keys", "revoke", new_id)
    assert (revoked.code, revoked.out) == (0, f"revoked key {new_id} (svc, tenant default)\n")
    twice = cli("keys", "revoke", new_id)
    assert (twice.code, twice.err) == (1, f"error: key {new_id} is already revoked\n")
    assert cli("keys", "list").out == (
        "no keys yet: create one with `finmaas keys create NAME --role ROLE`\n"
    )
    missing = cli("keys", "show", "0123456789abcdef")
    assert (missing.code, missing.err) == (1, "error: key '0123456789abcdef' not found\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--role", "boss"],
            "role must be one of admin, developer, validator, consumer, auditor, got 'boss'",
        ),
        (["--expires", "2001-01-01"], "expiry 2001-01-01T00:00:00+00:00 is in the past"),
        (
            ["--expires", "soon"],
            "expiry 'soon' is not 30d, 12h, a date (YYYY-MM-DD) or an ISO time",
        ),
        (["--expires", "0d"], "expiry must be in the future, got 0"),
        (["--grant", "../etc"], "grant 0: 'models' '../etc' has a character a model name cannot"),
        (
            ["--grant", "credit:delete"],
            "grant 0: 'verbs' must be a non-empty list of predict, explain, metadata",
        ),
        (
            ["--requests-per-minute", "0"],
            "requests per minute must be a whole number from 1 to 2147483647, got 0",
        ),
        (
            ["--monthly-quota", str(10**13)],
            f"monthly quota must be a whole number from 1 to {10**12}, got {10**13}",
        ),
        (
            ["--tokens-per-minute", "0"],
            "tokens per minute must be a whole number from 1 to 2147483647, got 0",
        ),
        (
            ["--tokens-per-minute", str(2**31)],
            f"tokens per minute must be a whole number from 1 to 2147483647, got {2**31}",
        ),
        (
            ["--monthly-token-quota", "-5"],
            "monthly token quota must be a whole number from 1 to 1000000000000, got -5",
        ),
        (
            ["--monthly-token-quota", str(10**12 + 1)],
            f"monthly token quota must be a whole number from 1 to {10**12}, got {10**12 + 1}",
        ),
        (["--tenant", "a/b"], None),
    ],
)
def test_bad_key_fields_are_refused(cli: Cli, args: list[str], message: str | None) -> None:
    result = cli("keys", "create", "k", *args)
    assert result.code == 1
    if message is not None:
        assert result.err == f"error: {message}\n"
    else:
        assert result.err.startswith("error: tenant ")
    assert cli("keys", "list", "--all", "--json").out.strip() == "[]"


def test_bad_key_name_is_refused(cli: Cli) -> None:
    result = cli("keys", "create", "bad name!")
    assert (result.code, result.err) == (
        1,
        "error: key name 'bad name!' must be 1-64 letters, digits, '.', '_' or '-'\n",
    )


# -- four-eyes and inventory ----------------------------------------------------


def _push(cli: Cli, files: dict[str, Path], which: str) -> None:
    pushed = cli(
        "models", "push", "credit", str(files[which]), "--signature", str(files["signature"])
    )
    assert pushed.code == 0, pushed.err


def test_four_eyes_promotion(
    cli: Cli, model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_user(monkeypatch, "alice")
    _push(cli, model_files, "v1")

    unapproved = cli("models", "promote", "credit", "1")
    assert (unapproved.code, unapproved.err) == (
        1,
        "error: alias 'production' of model 'credit' is protected: version 1 needs an "
        "approval by a validator of tenant 'default' or an admin, other than its author "
        "(local:alice). Such a validator approves it with their own key "
        "(`finmaas --server URL models approve credit 1 --note …`); then promote it again\n",
    )

    own = cli("models", "approve", "credit", "1", "--note", "I checked my own work")
    assert (own.code, own.err) == (
        1,
        "error: four-eyes rule: local:alice registered version 1 of model 'credit' and may "
        "not approve it. Another validator of tenant 'default' (a different person) or an "
        "admin must approve it with their own key: "
        "`finmaas --server URL models approve credit 1 --note …`\n",
    )
    _as_user(monkeypatch, "bob")
    blank = cli("models", "approve", "credit", "1", "--note", "  ")
    assert (blank.code, blank.err) == (
        1,
        "error: a note is required: say what was reviewed and why\n",
    )
    approved = cli("models", "approve", "credit", "1", "--note", "backtest and PSI reviewed")
    assert (approved.code, approved.out) == (
        0,
        "approved credit@1 by local:bob\npromote it with: finmaas models promote credit 1\n",
    )
    _as_user(monkeypatch, "alice")
    promoted = cli("models", "promote", "credit", "1")
    assert (promoted.code, promoted.out) == (0, "credit@production → version 1\n")

    _push(cli, model_files, "v2")
    _as_user(monkeypatch, "bob")
    rejected = cli("models", "reject", "credit", "2", "--note", "unstable on the 2024 cohort")
    assert (rejected.code, rejected.out) == (0, "rejected credit@2 by local:bob\n")
    refused = cli("models", "promote", "credit", "2")
    assert refused.code == 1
    assert refused.err.startswith("error: alias 'production' of model 'credit' is protected")

    shown = as_json(cli("models", "show", "credit", "--json").out)
    assert isinstance(shown, dict)
    assert shown["validation_status"] == "rejected"

    entries = as_json(cli("audit", "list", "--action", "version.*", "--json").out)
    assert [(e["action"], e["target"], e["actor"]) for e in entries] == [  # type: ignore[union-attr]
        ("version.publish", "credit@1", "local:alice"),
        ("version.approve", "credit@1", "local:bob"),
        ("version.publish", "credit@2", "local:alice"),
        ("version.reject", "credit@2", "local:bob"),
    ]


def test_inventory_update_and_review_due(
    cli: Cli, model_files: dict[str, Path], registry: Registry
) -> None:
    _push(cli, model_files, "v1")
    assert cli("models", "list", "--review-due").out == (
        f"no model reviews due on {registry.now().date().isoformat()}\n"
    )
    overdue = (registry.now().date() - timedelta(days=3)).isoformat()
    updated = cli(
        "models",
        "update",
        "credit",
        "--owner",
        "credit risk team",
        "--risk-tier",
        "1",
        "--intended-use",
        "retail PD for IFRS 9 staging",
        "--validation-status",
        "validated",
        "--next-review",
        overdue,
        "--protect",
        "staging",
        "--max-concurrency",
        "8",
    )
    assert updated.code == 0, updated.err
    assert updated.out.startswith("updated model credit\n")
    assert "risk tier: 1\n" in updated.out
    assert "protected aliases: production, staging\n" in updated.out

    model = as_json(cli("models", "show", "credit", "--json").out)
    assert isinstance(model, dict)
    assert (model["risk_tier"], model["validation_status"], model["next_review"]) == (
        1,
        "validated",
        overdue,
    )
    assert model["protected_aliases"] == ["production", "staging"]
    assert model["max_concurrency"] == 8
    due = cli("models", "list", "--review-due")
    assert due.code == 0
    assert "credit" in due.out
    assert overdue in due.out
    assert "3 day(s)" in due.out

    later = (registry.now().date() + timedelta(days=30)).isoformat()
    cli("models", "update", "credit", "--next-review", later)
    assert "no model reviews due" in cli("models", "list", "--review-due").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--risk-tier", "4"], "risk tier must be 1, 2 or 3, got 4"),
        (["--next-review", "next week"], "--next-review: 'next week' is not a date (YYYY-MM-DD)"),
        (["--validation-status", "great"], None),
        ([], "nothing to change: give at least one field"),
    ],
)
def test_bad_inventory_updates_are_refused(
    cli: Cli, model_files: dict[str, Path], args: list[str], message: str | None
) -> None:
    _push(cli, model_files, "v1")
    result = cli("models", "update", "credit", *args)
    assert result.code == 1
    if message is None:
        assert result.err.startswith("error: validation status must be one of draft, ")
    else:
        assert result.err == f"error: {message}\n"


# -- usage ----------------------------------------------------------------------


def _meter(registry: Registry) -> None:
    UsageStore(registry).add(
        [
            UsageRow("aaaaaaaaaaaaaaaa", "risk", "credit", 1, date(2026, 10, 30), 10, 40, 1, 5000),
            UsageRow("aaaaaaaaaaaaaaaa", "risk", "credit", 2, date(2026, 11, 2), 5, 5, 0, 2500),
            UsageRow("bbbbbbbbbbbbbbbb", "retail", "fraud", 1, date(2026, 11, 3), 7, 70, 0, 700),
        ]
    )


def test_usage_report_filters_and_exports(cli: Cli, registry: Registry, tmp_path: Path) -> None:
    assert cli("usage").out == "no usage recorded for this selection\n"
    _meter(registry)

    everything = cli("usage")
    assert everything.code == 0
    assert everything.out.endswith("total: 22 requests, 115 rows, 1 errors\n")

    november = as_json(cli("usage", "--since", "2026-11-01", "--json").out)
    assert isinstance(november, dict)
    assert november["totals"] == {"requests": 12, "rows": 75, "errors": 0, "latency_us": 3200}
    risk = as_json(cli("usage", "--tenant", "risk", "--until", "2026-11-01", "--json").out)
    assert isinstance(risk, dict)
    assert [(u["model"], u["version"], u["day"]) for u in risk["usage"]] == [
        ("credit", 1, "2026-10-30")
    ]
    by_key = as_json(cli("usage", "--key", "bbbbbbbbbbbbbbbb", "--json").out)
    assert isinstance(by_key, dict)
    assert by_key["totals"]["rows"] == 70
    by_model = as_json(cli("usage", "--model", "credit", "--json").out)
    assert isinstance(by_model, dict)
    assert by_model["totals"]["requests"] == 15

    target = tmp_path / "bill.csv"
    written = cli("usage", "--csv", str(target))
    assert written.out == f"wrote 3 row(s) to {target}\n"
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0] == {
        "key_id": "aaaaaaaaaaaaaaaa",
        "tenant": "risk",
        "model": "credit",
        "version": "1",
        "day": "2026-10-30",
        "requests": "10",
        "rows": "40",
        "errors": "1",
        "latency_ms_total": "5.0",
    }
    assert cli("usage", "--csv", "-").out == target.read_text()

    bad = cli("usage", "--since", "yesterday")
    assert (bad.code, bad.err) == (1, "error: --since: 'yesterday' is not a date (YYYY-MM-DD)\n")


# -- audit ----------------------------------------------------------------------


def test_audit_list_and_verify_catch_an_edited_row(
    cli: Cli, registry: Registry, settings: Settings
) -> None:
    key_id = _secret(cli("keys", "create", "svc").out)[4:20]
    cli("keys", "revoke", key_id)
    entries = as_json(cli("audit", "list", "--target", f"key:{key_id}", "--json").out)
    assert [e["action"] for e in entries] == ["key.create", "key.revoke"]  # type: ignore[union-attr]
    assert all(e["origin"] == "cli" for e in entries)  # type: ignore[union-attr]
    table = cli("audit", "list")
    assert table.code == 0
    assert "key.revoke" in table.out
    today = registry.now().date()
    assert as_json(cli("audit", "list", "--until", today.isoformat(), "--json").out) == []
    assert len(as_json(cli("audit", "list", "--since", today.isoformat(), "--json").out)) == 2  # type: ignore[arg-type]
    assert len(as_json(cli("audit", "list", "--limit", "1", "--json").out)) == 1  # type: ignore[arg-type]

    ok = cli("audit", "verify")
    assert (ok.code, ok.out) == (0, "audit trail intact: 2 entries checked\n")

    with registry.write() as conn:
        first = conn.execute(sa.select(sa.func.min(audit_log.c.id))).scalar_one()
        conn.execute(
            sa.update(audit_log).where(audit_log.c.id == first).values(actor="local:mallory")
        )
    broken = cli("audit", "verify")
    assert broken.code == 1
    assert broken.err.startswith("audit trail broken: ")
    assert str(first) in broken.err


def test_audit_list_by_tenant_shows_the_entries_of_the_tenants_objects(cli: Cli) -> None:
    b_key = _secret(cli("keys", "create", "b-app", "--tenant", "tenant-b").out)[4:20]
    own = _secret(cli("keys", "create", "ops").out)[4:20]
    cli("keys", "revoke", b_key)
    b_entries = as_json(cli("audit", "list", "--tenant", "tenant-b", "--json").out)
    assert [(e["action"], e["target"], e["tenant"]) for e in b_entries] == [  # type: ignore[index]
        ("key.create", f"key:{b_key}", "tenant-b"),
        ("key.revoke", f"key:{b_key}", "tenant-b"),
    ]  # made by the local admin (tenant default), yet tenant-b's
    default_entries = as_json(cli("audit", "list", "--tenant", "default", "--json").out)
    assert [e["target"] for e in default_entries] == [f"key:{own}"]  # type: ignore[index]


def test_audit_verify_catches_a_deleted_row(cli: Cli, registry: Registry) -> None:
    for name in ("a", "b", "c"):
        cli("keys", "create", name)
    with registry.write() as conn:
        middle = conn.execute(sa.select(audit_log.c.id).order_by(audit_log.c.id)).scalars().all()[1]
        conn.execute(sa.delete(audit_log).where(audit_log.c.id == middle))
    broken = cli("audit", "verify")
    assert broken.code == 1
    assert broken.err.startswith("audit trail broken: ")
