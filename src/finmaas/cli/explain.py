"""``finmaas explain``: why a version decides as it does, for records in a JSON file.

Runs offline against the registry (no server): loads the version, scores the
records and explains them exactly as ``POST :explain`` would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import read_file
from finmaas.cli.render import console, echo_json, table
from finmaas.errors import Invalid
from finmaas.explain import Explainer
from finmaas.publish.loading import load_version
from finmaas.schema import RecordEncoder
from finmaas.schema.output_rule import DecisionRule
from finmaas.serving.protocols.v1 import name_positional_rows


def explain(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    records_file: Annotated[
        Path,
        typer.Option(
            "--json",
            help='JSON file: one record, a list of records, or a V1 body {"instances": [...]}.',
        ),
    ],
    version: Annotated[
        str, typer.Option("--version", "-v", help="A version number or an alias.")
    ] = "production",
    reasons: Annotated[
        int | None, typer.Option(help="Most reasons per record (default 4).")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every input's contribution, not only reasons.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--print-json", help="Print the V1 :explain response as JSON.")
    ] = False,
) -> None:
    """Explain a version's decisions: contributions in log-odds and adverse-action reasons."""
    state = cli_context(ctx)
    records = _records(records_file)
    found, predictor = load_version(
        state.registry,
        state.store,
        name,
        int(version) if version.isdigit() else version,
        allow_pickle=state.settings.allow_pickle,
    )
    explainer = Explainer(found, predictor)
    contribute = explainer.check()
    count = explainer.check_reasons(reasons)
    encoder = RecordEncoder(found.signature)
    x = encoder.encode(name_positional_rows(records, encoder.names))
    predictions = DecisionRule.of(found.signature, found.metrics, found.params).records(
        predictor.predict(x)
    )
    for prediction, explanation in zip(
        predictions, explainer.rows(contribute(x), x, count), strict=True
    ):
        prediction["explanation"] = explanation
    if as_json:
        echo_json(
            {"model_name": name, "model_version": str(found.version), "predictions": predictions}
        )
        return
    for row, prediction in enumerate(predictions):
        _print(row, found.ref, prediction, show_all)


def _records(path: Path) -> list[Any]:
    try:
        document = orjson.loads(read_file(path, "records"))
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"records file {str(path)!r} is not valid JSON ({exc})") from None
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    records = document if isinstance(document, list) else [document]
    if not records or not all(isinstance(r, dict | list) for r in records):
        raise Invalid(
            f"records file {str(path)!r} must hold a record, a list of records "
            'or {"instances": [...]}'
        )
    return records


def _print(row: int, ref: str, prediction: dict[str, Any], show_all: bool) -> None:
    explanation = prediction["explanation"]
    outcome = ", ".join(
        f"{key} {_number(key, value)}" for key, value in prediction.items() if key != "explanation"
    )
    console.print(f"[bold]record {row}[/bold] — {ref}: {outcome}")
    console.print(
        f"{explanation['method']} ({'exact' if explanation['exact'] else 'approximate'}), "
        f"reference {explanation['reference']}: base {explanation['base_value']:+.4f} "
        f"+ contributions = output {explanation['output']:+.4f} (log-odds)",
        markup=False,
    )
    reasons = table("#", "reason", "input", "value", "contribution", "P effect")
    for rank, reason in enumerate(explanation["reasons"], start=1):
        effect = reason.get("probability_effect")
        reasons.add_row(
            str(rank),
            reason["text"],
            reason["feature"],
            str(reason["value"]),
            f"{reason['contribution']:+.4f}",
            "" if effect is None else f"{effect:+.4f}",
        )
    if explanation["reasons"]:
        console.print(reasons)
    else:
        console.print("no input pushes this record towards the adverse outcome")
    if show_all:
        contributions = sorted(explanation["contributions"].items(), key=lambda kv: -abs(kv[1]))
        everything = table("input", "contribution")
        for feature, value in contributions:
            everything.add_row(feature, f"{value:+.4f}")
        console.print(everything)


def _number(key: str, value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.1f}" if key == "score" else f"{value:.4f}"
