"""``finmaas models``: list, inspect, push, promote, roll back, diff and archive."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import parse_day, parse_pairs, read_csv, read_file, read_json_object
from finmaas.cli.render import console, echo_json, metric, size, table, when
from finmaas.errors import Invalid
from finmaas.registry import ModelVersion, NewModel
from finmaas.registry.compare import compare_versions
from finmaas.registry.records import Model, ModelUpdate
from finmaas.runtimes import ModelFormat
from finmaas.schema import signature_from_json

app = typer.Typer(help="Models, versions and aliases in the registry.", no_args_is_help=True)

AliasOption = Annotated[str, typer.Option("--alias", "-a", help="Alias to move.")]


@app.command("list")
def list_models(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include archived models.")] = False,
    review_due: Annotated[
        bool,
        typer.Option("--review-due", help="Only models whose periodic review is due (or overdue)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List models with their latest version and aliases."""
    registry = cli_context(ctx).control
    today = registry.now().date()
    if review_due:
        _list_review_due(registry.list_models(include_archived=all_, review_due_on=today), today)
        return
    rows = []
    for model in registry.list_models(include_archived=all_):
        rows.append((model, registry.aliases(model.name)))
    if as_json:
        echo_json([{**_plain(m), "aliases": a} for m, a in rows])
        return
    if not rows:
        typer.echo("no models yet: push one with `finmaas models push` or run `finmaas quickstart`")
        return
    out = table("name", "task", "versions", "aliases", "status", "updated")
    for model, aliases in rows:
        shown = ", ".join(f"{k}→{v}" for k, v in sorted(aliases.items()))
        out.add_row(
            model.name,
            model.task,
            str(model.latest_version),
            shown,
            model.status,
            when(model.updated_at),
        )
    console.print(out)


@app.command()
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Show one version: a number or an alias.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a model with its versions, or one version in full."""
    registry = cli_context(ctx).control
    if version is not None:
        found = registry.get_version(name, version)
        if as_json:
            echo_json(_plain(found))
        else:
            _print_version(found)
        return
    model = registry.get_model(name)
    versions = registry.list_versions(name)
    if as_json:
        echo_json({**_plain(model), "versions": [_plain(v) for v in versions]})
        return
    console.print(f"[bold]{model.name}[/bold]  {model.task}  {model.status}")
    _print_inventory(model)
    out = table("version", "aliases", "format", "size", "auc", "status", "created", "by")
    for v in versions:
        out.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.artifact_format,
            size(v.artifact_size),
            metric(v.metrics.get("auc")),
            v.status,
            when(v.created_at),
            v.created_by,
        )
    console.print(out)


@app.command()
def card(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str, typer.Option("--version", "-v", help="A version number or an alias.")
    ] = "latest",
) -> None:
    """Print a version's model card (markdown)."""
    registry = cli_context(ctx).control
    selected = registry.get_model(name).latest_version if version == "latest" else version
    typer.echo(registry.get_version(name, selected).model_card, nl=False)


@app.command()
def push(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (created on its first push).")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Model file: ONNX, LightGBM text, XGBoost JSON/UBJ or skops (none with "
            "--endpoint)."
        ),
    ] = None,
    signature: Annotated[
        Path | None, typer.Option("--signature", "-s", help="Signature JSON file.")
    ] = None,
    fmt: Annotated[
        ModelFormat | None,
        typer.Option("--format", "-f", help="Expected format (checked against the file)."),
    ] = None,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics", help="JSON object of metric name → number.")
    ] = None,
    metric_values: Annotated[
        list[str] | None, typer.Option("--metric", help="One metric as NAME=NUMBER; repeatable.")
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params", help="JSON object of parameters.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE; repeatable.")] = None,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="CSV sample of inputs for the drift reference profile."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Binary: the --reference column holding the outcome; the push is refused "
            "when the model ranks the positive class below chance (AUC < 0.5) on it."
        ),
    ] = None,
    model_card: Annotated[
        Path | None, typer.Option("--model-card", help="Markdown model card.")
    ] = None,
    explain_reference: Annotated[
        str,
        typer.Option(
            help="What explanations are measured against: the whole --reference 'sample', "
            "or the approvals at the 'cutoff'."
        ),
    ] = "sample",
    reason_codes: Annotated[
        Path | None,
        typer.Option(help="JSON object of input name → adverse-action reason text."),
    ] = None,
    parent: Annotated[
        int | None, typer.Option("--parent", help="Version this one was derived from.")
    ] = None,
    description: Annotated[str, typer.Option(help="Model description (first push only).")] = "",
    owner: Annotated[str, typer.Option(help="Model owner (first push only).")] = "",
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle", help="Admins only: accept a pickle/joblib file (runs code on load)."
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="An llm version backed by an OpenAI-compatible upstream: its base URL "
            "(http://gpu-node:8000/v1), instead of a FILE."
        ),
    ] = None,
    upstream_model: Annotated[
        str | None, typer.Option(help="With --endpoint: the model id the upstream serves.")
    ] = None,
    credential: Annotated[
        str | None,
        typer.Option(
            help="With --endpoint: where the upstream's key is, env:VAR or file:PATH "
            "(the registry keeps this reference, never the key)."
        ),
    ] = None,
    price_prompt: Annotated[
        str | None, typer.Option(help="With --endpoint: price per million prompt tokens.")
    ] = None,
    price_completion: Annotated[
        str | None, typer.Option(help="With --endpoint: price per million completion tokens.")
    ] = None,
    context_length: Annotated[
        int | None, typer.Option(help="With --endpoint: the model's context length in tokens.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="With --endpoint: a default request parameter, KEY=VALUE (temperature, "
            "top_p, max_tokens); repeatable."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="With --endpoint: check the upstream lists the model and completes one "
            "token (--no-check: register an endpoint not up yet, recorded as unchecked).",
        ),
    ] = True,
) -> None:
    """Publish a model file, or an LLM endpoint (--endpoint), as the next version of NAME."""
    endpoint_options = {
        "--upstream-model": upstream_model,
        "--credential": credential,
        "--price-prompt": price_prompt,
        "--price-completion": price_completion,
        "--context-length": context_length,
        "--param": param,
    }
    if endpoint is not None:
        if file is not None or signature is not None:
            raise Invalid("--endpoint registers an upstream: pass no FILE and no --signature")
        _push_endpoint(
            ctx,
            name,
            endpoint,
            upstream_model,
            credential=credential,
            price_prompt=price_prompt,
            price_completion=price_completion,
            context_length=context_length,
            params=param or [],
            check=check,
            tags=parse_pairs(tag or [], "--tag"),
            metrics=parse_pairs(metric_values or [], "--metric", number=True),
            parent=parent,
            model_card=read_file(model_card, "model card").decode() if model_card else "",
            spec=NewModel(description=description, owner=owner),
        )
        return
    given = [option for option, value in endpoint_options.items() if value]
    if given:
        raise Invalid(f"{given[0]} describes an --endpoint; pass --endpoint URL")
    if file is None or signature is None:
        raise Invalid("pass a model FILE and its --signature, or --endpoint URL for an LLM")
    from finmaas.publish.publishing import split_target  # numpy, the runtimes: not for `list`

    state = cli_context(ctx)
    sig = signature_from_json(read_file(signature, "signature"))
    metrics: dict[str, Any] = read_json_object(metrics_file, "metrics") if metrics_file else {}
    metrics.update(parse_pairs(metric_values or [], "--metric", number=True))
    sample = read_csv(reference, "reference") if reference else None
    labels = None
    if target is not None:
        if sample is None or reference is None:
            raise Invalid("--target names a column of the --reference sample; pass --reference")
        sample, labels = split_target(sample, target, reference.name)
    with console.status(f"checking and storing {file.name}…"):
        version = state.control.publish(
            name,
            file,
            signature=sig,
            fmt=fmt,
            allow_pickle=allow_pickle,
            metrics=metrics,
            params=read_json_object(params_file, "params") if params_file else {},
            tags=parse_pairs(tag or [], "--tag"),
            parent_version=parent,
            lineage={"produced_by": "finmaas models push", "source_file": file.name},
            reference_sample=sample,
            reference_labels=labels,
            reference_target=target or "target",
            model_card=read_file(model_card, "model card").decode() if model_card else "",
            model_spec=NewModel(description=description, owner=owner),
            explanation_reference=explain_reference,
            reason_codes=read_json_object(reason_codes, "reason codes") if reason_codes else None,
        )
    typer.echo(
        f"published {version.ref} ({version.artifact_format}, {size(version.artifact_size)}, "
        f"sha256:{version.artifact_digest[:12]})"
    )
    if "reference_auc" in version.metrics:
        typer.echo(
            f"AUC of P({sig.positive_class}) on the labelled reference: "
            f"{version.metrics['reference_auc']:.3f}"
        )


def _push_endpoint(
    ctx: typer.Context,
    name: str,
    url: str,
    upstream_model: str | None,
    *,
    credential: str | None,
    price_prompt: str | None,
    price_completion: str | None,
    context_length: int | None,
    params: list[str],
    check: bool,
    tags: dict[str, str],
    metrics: dict[str, Any],
    parent: int | None,
    model_card: str,
    spec: NewModel,
) -> None:
    from finmaas.schema.llm_endpoint import endpoint_spec, parse_param_pairs

    if upstream_model is None:
        raise Invalid("--endpoint needs --upstream-model: the model id the upstream serves")
    endpoint = endpoint_spec(
        url,
        upstream_model,
        credential=credential,
        price_prompt=price_prompt,
        price_completion=price_completion,
        context_length=context_length,
        params=parse_param_pairs(params),
    )
    state = cli_context(ctx)
    doing = f"checking {endpoint.url}…" if check else "registering…"
    with console.status(doing):
        version = state.control.publish_endpoint(
            name,
            endpoint,
            check=check,
            metrics=metrics,
            tags=tags,
            parent_version=parent,
            model_card=model_card,
            model_spec=spec,
        )
    typer.echo(
        f"published {version.ref} (llm endpoint {endpoint.url}, model "
        f"{endpoint.upstream_model!r}, sha256:{version.artifact_digest[:12]})"
    )
    from finmaas.publish.llm_endpoints import check_summary

    typer.echo(check_summary(version.params))


@app.command()
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number to point the alias at.")],
    alias: AliasOption = "production",
    accept_signature_change: Annotated[
        bool,
        typer.Option(
            "--accept-signature-change",
            help="Move the alias even though the version's task, classes or positive class "
            "differ from its current version's.",
        ),
    ] = False,
) -> None:
    """Point an alias (default production) at a version."""
    control = cli_context(ctx).control
    before = control.aliases(name).get(alias)
    moved = control.set_alias(name, alias, version, accept_signature_change=accept_signature_change)
    was = f" (was {before})" if before is not None else ""
    typer.echo(f"{name}@{alias} → version {moved}{was}")


@app.command()
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: AliasOption = "production",
) -> None:
    """Move an alias back to the version it pointed to before."""
    control = cli_context(ctx).control
    before = control.get_version(name, alias).version
    moved = control.rollback_alias(name, alias)
    typer.echo(f"{name}@{alias} → version {moved} (rolled back from {before})")


@app.command()
def approve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number reviewed.")],
    note: Annotated[str, typer.Option(help="What was reviewed, and the conclusion.")],
) -> None:
    """Record a validator's approval of a version (four-eyes: not by its author)."""
    _decide(ctx, name, version, "approved", note)


@app.command()
def reject(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number reviewed.")],
    note: Annotated[str, typer.Option(help="What was reviewed, and why it fails.")],
) -> None:
    """Record a validator's rejection of a version."""
    _decide(ctx, name, version, "rejected", note)


@app.command()
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    description: Annotated[str | None, typer.Option(help="What the model does.")] = None,
    owner: Annotated[str | None, typer.Option(help="Accountable owner.")] = None,
    risk_tier: Annotated[
        int | None, typer.Option(help="Model risk tier: 1 (highest) to 3 (lowest).")
    ] = None,
    intended_use: Annotated[
        str | None, typer.Option(help="What the model may be used for.")
    ] = None,
    validation_status: Annotated[
        str | None,
        typer.Option(help="draft, validated, approved, rejected or retired."),
    ] = None,
    next_review: Annotated[
        str | None, typer.Option(help="Date of the next periodic review (YYYY-MM-DD).")
    ] = None,
    protect: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "An alias that needs an approved version, like production (always protected). "
                "Repeatable; replaces the list."
            )
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(help="Most requests in flight for the model across workers; 0 removes it."),
    ] = None,
    drift_watch: Annotated[
        float | None, typer.Option(help="PSI/CSI from which drift is 'watch' (default 0.10).")
    ] = None,
    drift_alert: Annotated[
        float | None, typer.Option(help="PSI/CSI from which drift is 'alert' (default 0.25).")
    ] = None,
    log_sample_rate: Annotated[
        float | None,
        typer.Option(help="Share of served rows written to the prediction log, 0 (off) to 1."),
    ] = None,
    decisions: Annotated[
        bool | None,
        typer.Option(
            "--decisions/--no-decisions",
            help="A decision model: keep a decision record of every served row.",
        ),
    ] = None,
) -> None:
    """Change a model's inventory fields (audited)."""
    state = cli_context(ctx)
    model = state.registry.update_model(
        name,
        ModelUpdate(
            description=description,
            owner=owner,
            risk_tier=risk_tier,
            intended_use=intended_use,
            validation_status=validation_status,
            next_review=parse_day(next_review, "--next-review"),
            protected_aliases=tuple(protect) if protect is not None else None,
            max_concurrency=max_concurrency,
            drift_watch=drift_watch,
            drift_alert=drift_alert,
            log_sample_rate=log_sample_rate,
            decisions=decisions,
        ),
        actor=state.actor,
    )
    typer.echo(f"updated model {model.name}")
    _print_inventory(model)


@app.command()
def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    left: Annotated[str, typer.Argument(help="First version (number or alias).")],
    right: Annotated[str, typer.Argument(help="Second version (number or alias).")],
) -> None:
    """Compare two versions: metrics, signature and size, side by side."""
    registry = cli_context(ctx).control
    result = compare_versions(registry.get_version(name, left), registry.get_version(name, right))
    a, b = result.left, result.right
    out = table("", f"version {a.version}", f"version {b.version}", "change", title=f"{name}")
    out.add_row("format", a.artifact_format, b.artifact_format, "")
    out.add_row("size", size(a.artifact_size), size(b.artifact_size), f"×{result.size_ratio:.2f}")
    for field in result.fields:
        out.add_row(field.name, field.left, field.right, "changed" if field.change else "")
    out.add_row("inputs", str(len(a.signature.inputs)), str(len(b.signature.inputs)), "")
    out.add_row("created", when(a.created_at), when(b.created_at), "")
    for row in result.metrics:
        delta = "" if row.delta is None else f"{row.delta:+.4f}"
        out.add_row(row.name, metric(row.left), metric(row.right), delta)
    console.print(out)
    changes = [(field.name, field.change) for field in result.field_changes]
    changes += [(f"input {change.name}", change.change) for change in result.features]
    if not changes:
        console.print(
            "signature: identical task, classes, positive class, outputs, decision threshold "
            "and inputs"
        )
    for what, change in changes:
        console.print(f"changed {what}: {change}", markup=False, highlight=False)


@app.command()
def archive(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None,
        typer.Option("--version", "-v", help="Archive one version instead of the model."),
    ] = None,
) -> None:
    """Archive a model (all versions, aliases removed) or one version. Artifacts are kept."""
    state = cli_context(ctx)
    if version is None:
        state.registry.archive_model(name, actor=state.actor)
        typer.echo(
            f"archived model {name} and its versions; artifacts stay until `finmaas models purge`"
        )
    else:
        state.registry.archive_version(name, version, actor=state.actor)
        typer.echo(f"archived {name}@{version}")


@app.command()
def verify(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", help="One version (number or alias); default all active."),
    ] = None,
) -> None:
    """Check artifacts against their sha256 digests and load them with their runtime."""
    from finmaas.publish.loading import load_artifact  # numpy, the runtimes: not for `list`

    state = cli_context(ctx)
    registry = state.registry
    if version is None:
        versions = registry.list_versions(name, include_archived=False)
    else:
        versions = [registry.get_version(name, version)]
    for found in versions:
        if found.artifact_format == ModelFormat.LLM_ENDPOINT:
            from finmaas.schema.llm_endpoint import endpoint_spec_from_bytes

            endpoint_spec_from_bytes(state.store.read(found.artifact_digest))
            typer.echo(f"{found.ref}: sha256 verified, an llm endpoint spec")
            continue
        load_artifact(state.store, found, allow_pickle=state.settings.allow_pickle)
        typer.echo(f"{found.ref}: sha256 verified, loads as {found.artifact_format}")


@app.command()
def purge(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
) -> None:
    """Delete the artifact files that only archived versions use."""
    state = cli_context(ctx)
    digests = state.registry.purgeable_artifacts()
    if not digests:
        typer.echo("nothing to purge")
        return
    if not yes:
        typer.confirm(f"delete {len(digests)} artifact file(s) of archived versions?", abort=True)
    deleted = 0
    for digest in digests:
        if state.registry.mark_artifact_purged(digest, actor=state.actor):
            deleted += state.store.delete(digest)
    typer.echo(f"purged {deleted} artifact file(s)")


def _decide(ctx: typer.Context, name: str, version: int, decision: str, note: str) -> None:
    control = cli_context(ctx).control
    approval = control.decide(name, version, decision, note)
    typer.echo(f"{approval.decision} {name}@{version} by {approval.actor}")
    if decision == "approved":
        typer.echo(control.after_approval(name, version))


def _print_inventory(model: Model) -> None:
    review = model.next_review.isoformat() if model.next_review else "not scheduled"
    cap = str(model.max_concurrency) if model.max_concurrency else "none"
    policy = model.monitoring
    for label, value in (
        ("description", model.description),
        ("owner", model.owner or "—"),
        ("tenant", model.tenant),
        ("risk tier", str(model.risk_tier) if model.risk_tier else "—"),
        ("intended use", model.intended_use or "—"),
        ("validation", model.validation_status),
        ("next review", review),
        ("protected aliases", ", ".join(model.protected_aliases)),
        ("concurrency cap", cap),
        (
            "monitoring",
            f"drift bands {policy.drift_watch}/{policy.drift_alert}, prediction log "
            f"{policy.log_sample_rate:.0%}, decision records {'on' if policy.decisions else 'off'}",
        ),
    ):
        if value:
            console.print(f"{label}: {value}", markup=False)


def _list_review_due(due: list[Model], today: date) -> None:
    if not due:
        typer.echo(f"no model reviews due on {today.isoformat()}")
        return
    out = table("name", "owner", "risk tier", "validation", "next review", "overdue")
    for model in due:
        assert model.next_review is not None
        days = (today - model.next_review).days
        out.add_row(
            model.name,
            model.owner or "—",
            str(model.risk_tier) if model.risk_tier else "—",
            model.validation_status,
            model.next_review.isoformat(),
            f"{days} day(s)" if days else "due today",
        )
    console.print(out)


def _print_version(v: ModelVersion) -> None:
    console.print(f"[bold]{v.ref}[/bold]  {v.status}  aliases: {', '.join(v.aliases) or '—'}")
    console.print(
        f"artifact: {v.artifact_format}, {size(v.artifact_size)}, sha256:{v.artifact_digest}"
    )
    console.print(f"created: {when(v.created_at)} by {v.created_by}")
    if v.parent_version is not None:
        console.print(f"parent: version {v.parent_version}")
    if v.lineage:
        console.print(f"lineage: {orjson.dumps(v.lineage).decode()}")
    explanation = v.explanation or {}
    if explanation.get("method"):
        console.print(
            f"explanations: {explanation['method']} against the {explanation['reference']} "
            f"reference ({explanation['reference_rows']} rows)"
        )
    sig = v.signature
    classes = f" classes: {', '.join(sig.classes)}" if sig.classes else ""
    positive = f" positive class: {sig.positive_class}" if sig.positive_class else ""
    console.print(f"task: {sig.task}{classes}{positive}", markup=False)
    inputs = table("input", "dtype", "rule", "pii", title="signature")
    for f in sig.inputs:
        rule = []
        if f.categories:
            rule.append(f"{len(f.categories)} categories")
        if f.min is not None and f.max is not None:
            rule.append(f"[{f.min:g}, {f.max:g}]")
        elif f.min is not None:
            rule.append(f"≥ {f.min:g}")
        elif f.max is not None:
            rule.append(f"≤ {f.max:g}")
        if f.nullable:
            rule.append("nullable")
        inputs.add_row(f.name, f.dtype, ", ".join(rule), "yes" if f.pii else "")
    console.print(inputs)
    if v.metrics:
        metrics = table("metric", "value", title="metrics")
        for key, value in sorted(v.metrics.items()):
            metrics.add_row(key, metric(value))
        console.print(metrics)


def _plain(value: Any) -> Any:
    data = dataclasses.asdict(value)
    if isinstance(value, ModelVersion):
        data["ref"] = value.ref
    return data
