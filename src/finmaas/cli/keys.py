"""``finmaas keys``: create, list, show, revoke and rotate API keys.

These commands work offline against the home folder (or ``--database-url``):
whoever can write the registry database is its operator, which is how the
first admin key is made. A running server sees every change within its
access refresh interval (0.5 s by default). With ``--server`` they go to the
server's ``/api/keys`` with an admin key (an auditor's to list and show).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from finmaas.actor import DEFAULT_TENANT
from finmaas.cli.context import cli_context
from finmaas.cli.render import console, echo_json, table, when
from finmaas.errors import Invalid
from finmaas.registry.key_store import KeyRecord
from finmaas.security.key_secrets import IssuedKey
from finmaas.security.policy import ROLES, VERBS, parse_grant

app = typer.Typer(
    help="API keys: who may call the server, and with what limits.", no_args_is_help=True
)

KeyIdArgument = Annotated[str, typer.Argument(help="Key id (the 16 hex digits after 'fmk_').")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_RELATIVE = re.compile(r"(\d{1,5})([dh])")


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name: 1-64 letters, digits, '.', '_' or '-'.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "consumer",
    tenant: Annotated[str, typer.Option(help="Team the key belongs to.")] = DEFAULT_TENANT,
    owner: Annotated[str, typer.Option(help="Person or system responsible for the key.")] = "",
    grant: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "Limit the key to these models: PATTERN or PATTERN:VERB,VERB (a name or "
                f"glob; verbs {', '.join(VERBS)}). Repeatable. Without it, the key may use "
                "its tenant's models."
            )
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry: 30d, 12h, a date (YYYY-MM-DD, midnight UTC) or ISO time."),
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(help="Most requests per minute (token bucket).")
    ] = None,
    rows_per_minute: Annotated[
        int | None, typer.Option(help="Most predicted rows per minute (token bucket).")
    ] = None,
    monthly_quota: Annotated[
        int | None, typer.Option(help="Most predicted rows per calendar month (UTC).")
    ] = None,
    tokens_per_minute: Annotated[
        int | None,
        typer.Option(
            help="Most prompt + completion tokens per minute, generative models (token bucket)."
        ),
    ] = None,
    monthly_token_quota: Annotated[
        int | None,
        typer.Option(help="Most prompt + completion tokens per calendar month (UTC)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its secret, once: only its sha256 digest is stored."""
    control = cli_context(ctx).control
    issued = control.issue_key(
        name=name,
        role=role,
        tenant=tenant,
        owner=owner,
        grants=tuple(parse_grant(text) for text in grant or ()),
        expires_at=parse_expiry(expires, control.now()) if expires else None,
        requests_per_minute=requests_per_minute,
        rows_per_minute=rows_per_minute,
        monthly_quota=monthly_quota,
        tokens_per_minute=tokens_per_minute,
        monthly_token_quota=monthly_token_quota,
    )
    _print_issued("created", issued, as_json)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List keys (never their secrets)."""
    keys = cli_context(ctx).control.list_keys(tenant=tenant, include_revoked=all_)
    if as_json:
        echo_json([key.public() for key in keys])
        return
    if not keys:
        typer.echo("no keys yet: create one with `finmaas keys create NAME --role ROLE`")
        return
    out = table("id", "name", "role", "tenant", "grants", "limits", "expires", "last used", "state")
    for key in keys:
        out.add_row(
            key.id,
            key.name,
            key.role,
            key.tenant,
            _grants(key),
            _limits(key),
            when(key.expires_at),
            when(key.last_used_at),
            _state(key),
        )
    console.print(out)


@app.command()
def show(ctx: typer.Context, key_id: KeyIdArgument, as_json: JsonOption = False) -> None:
    """Show one key in full (never its secret)."""
    key = cli_context(ctx).control.get_key(key_id)
    if as_json:
        echo_json(key.public())
        return
    for label, value in (
        ("id", key.id),
        ("name", key.name),
        ("owner", key.owner or "—"),
        ("tenant", key.tenant),
        ("role", key.role),
        ("grants", _grants(key) or "none: its tenant's models"),
        ("limits", _limits(key) or "none"),
        ("expires", when(key.expires_at) or "never"),
        ("created", f"{when(key.created_at)} by {key.created_by}"),
        ("last used", when(key.last_used_at) or "never"),
        ("state", _state(key)),
    ):
        console.print(f"{label + ':':11} {value}", markup=False)


@app.command()
def revoke(ctx: typer.Context, key_id: KeyIdArgument) -> None:
    """Revoke a key; every worker refuses it within a second."""
    key = cli_context(ctx).control.revoke_key(key_id)
    typer.echo(f"revoked key {key.id} ({key.name}, tenant {key.tenant})")


@app.command()
def rotate(ctx: typer.Context, key_id: KeyIdArgument, as_json: JsonOption = False) -> None:
    """Replace a key's secret: a new key with the same name, role, grants and limits."""
    issued = cli_context(ctx).control.rotate_key(key_id)
    _print_issued(f"rotated key {key_id}; the old secret no longer works. New", issued, as_json)


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, a date (midnight UTC) or an ISO time (UTC when it has no zone)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        if amount == 0:
            raise Invalid("expiry must be in the future, got 0")
        return now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"expiry {text[:40]!r} is not 30d, 12h, a date (YYYY-MM-DD) or an ISO time"
        ) from None
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if at <= now:
        raise Invalid(f"expiry {at.isoformat()} is in the past")
    return at


def _print_issued(verb: str, issued: IssuedKey, as_json: bool) -> None:
    key = issued.record
    if as_json:
        echo_json({"key": key.public(), "secret": issued.token})
        return
    typer.echo(f"{verb} key {key.id}: {key.name}, role {key.role}, tenant {key.tenant}")
    typer.echo("secret (shown once, only its hash is stored; send it as 'Authorization: Bearer'):")
    typer.echo(issued.token)


def _grants(key: KeyRecord) -> str:
    return ", ".join(f"{g.models}:{','.join(g.verbs)}" for g in key.grants)


def _limits(key: KeyRecord) -> str:
    parts = []
    if key.requests_per_minute is not None:
        parts.append(f"{key.requests_per_minute} req/min")
    if key.rows_per_minute is not None:
        parts.append(f"{key.rows_per_minute} rows/min")
    if key.monthly_quota is not None:
        parts.append(f"{key.monthly_quota} rows/month")
    if key.tokens_per_minute is not None:
        parts.append(f"{key.tokens_per_minute} tokens/min")
    if key.monthly_token_quota is not None:
        parts.append(f"{key.monthly_token_quota} tokens/month")
    return ", ".join(parts)


def _state(key: KeyRecord) -> str:
    if key.revoked_at is not None:
        replaced = f", replaced by {key.replaced_by}" if key.replaced_by else ""
        return f"revoked {when(key.revoked_at)}{replaced}"
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"
