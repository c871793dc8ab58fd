"""``finmaas optimize NAME@VERSION`` and ``finmaas convert NAME@VERSION``: a cheaper
version of a registered one, with a report against its parent.

Both run as a job (:mod:`finmaas.optimize.runs`), followed with a progress bar
like ``finmaas train``; ``--detach`` returns at once. ``VERSION`` is a number or
an alias, resolved when the job is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.train import DetachOption, start_job
from finmaas.errors import Invalid
from finmaas.optimize.distill import STUDENTS
from finmaas.optimize.prune import STRUCTURES
from finmaas.optimize.quantize import MODES
from finmaas.optimize.runs import METHODS

OPTIMIZE_METHODS = tuple(m for m in METHODS if m != "convert")
"""``convert`` has its own command."""

RefArgument = Annotated[str, typer.Argument(help="NAME@VERSION (a version number or an alias).")]
DataOption = Annotated[
    Path,
    typer.Option(
        help="CSV or Parquet file of rows with the model's inputs: part tunes the child, "
        "the rest compares parent and child."
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(help="Column of the outcome, for metrics and the gate (the model's classes)."),
]
MinSpeedupOption = Annotated[
    float | None,
    typer.Option(
        help="Refuse the child if its rows/s at 64 rows are less than this multiple of its "
        "parent's (e.g. 1.2)."
    ),
]


def optimize(
    ctx: typer.Context,
    ref: RefArgument,
    method: Annotated[str, typer.Option(help=f"One of {', '.join(OPTIMIZE_METHODS)}.")],
    data: DataOption,
    target: TargetOption = None,
    max_metric_drop: Annotated[
        list[str] | None,
        typer.Option(
            help="METRIC=DROP: refuse the child if it loses more (e.g. auc=0.005; repeatable)."
        ),
    ] = None,
    min_speedup: MinSpeedupOption = None,
    mode: Annotated[str, typer.Option(help=f"quantize: {', '.join(MODES)}.")] = "dynamic",
    sparsity: Annotated[float, typer.Option(help="prune: share of units or weights.")] = 0.5,
    structure: Annotated[
        str, typer.Option(help=f"prune (networks): {', '.join(STRUCTURES)}.")
    ] = "units",
    fine_tune_epochs: Annotated[
        int, typer.Option(help="prune (networks): epochs of fine-tuning, 0 for none.")
    ] = 50,
    keep_trees: Annotated[
        int | None,
        typer.Option(help="prune (trees): keep this many (default: lowest tuning log loss)."),
    ] = None,
    student: Annotated[str, typer.Option(help=f"distill: {', '.join(STUDENTS)}.")] = "lightgbm",
    trees: Annotated[int, typer.Option(help="distill (lightgbm): the student's trees.")] = 50,
    leaves: Annotated[int, typer.Option(help="distill (lightgbm): leaves per tree.")] = 8,
    hidden: Annotated[int, typer.Option(help="distill (network): hidden units.")] = 16,
    neighbours: Annotated[
        int, typer.Option(help="distill: synthetic neighbours per tuning row.")
    ] = 20,
    jitter: Annotated[float, typer.Option(help="distill: size of a neighbour's step.")] = 0.1,
    tuning_share: Annotated[
        float, typer.Option(help="Share of the rows that tune the child; the rest evaluate.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the method.")] = 42,
    detach: DetachOption = False,
) -> None:
    """Quantise, prune or distill a version into a new, cheaper version, with a report
    against its parent (size, load time, latency, rows/s, metrics, fidelity)."""
    if method not in OPTIMIZE_METHODS:
        hint = "; to convert, run: finmaas convert" if method == "convert" else ""
        raise Invalid(
            f"--method must be one of {', '.join(OPTIMIZE_METHODS)}, got {method!r}{hint}"
        )
    options = {
        **_common(ctx, ref, data, target, max_metric_drop, tuning_share, seed),
        "min_speedup": min_speedup,
        "method": method,
        "mode": mode,
        "sparsity": sparsity,
        "structure": structure,
        "fine_tune_epochs": fine_tune_epochs,
        "keep_trees": keep_trees,
        "student": student,
        "trees": trees,
        "leaves": leaves,
        "hidden": hidden,
        "neighbours": neighbours,
        "jitter": jitter,
    }
    start_job(ctx, "optimize", options, detach)


def convert(
    ctx: typer.Context,
    ref: RefArgument,
    data: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet file of reference rows: the ONNX graph must score "
            "every one within 1e-5 of the original."
        ),
    ],
    target: TargetOption = None,
    tuning_share: Annotated[
        float, typer.Option(help="Share of the rows not used for the comparison report.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Random seed of the split.")] = 42,
    min_speedup: MinSpeedupOption = None,
    detach: DetachOption = False,
) -> None:
    """Convert a LightGBM, XGBoost or scikit-learn version to ONNX as a new version,
    checked to score the data's rows within 1e-5 of the original."""
    options = {
        **_common(ctx, ref, data, target, None, tuning_share, seed),
        "min_speedup": min_speedup,
        "method": "convert",
    }
    start_job(ctx, "optimize", options, detach)


def _common(
    ctx: typer.Context,
    ref: str,
    data: Path,
    target: str | None,
    gates: list[str] | None,
    tuning_share: float,
    seed: int,
) -> dict[str, Any]:
    name, _, selected = ref.partition("@")
    if not name or not selected:
        raise Invalid(f"name the version as NAME@VERSION (a number or an alias), got {ref!r}")
    control = cli_context(ctx).control
    version = control.get_version(name, int(selected) if selected.isdigit() else selected)
    return {
        "name": name,
        "version": version.version,
        "data": str(data.resolve()),
        "target": target,
        "max_metric_drop": parse_gates(gates or []),
        "tuning_share": tuning_share,
        "seed": seed,
    }


def parse_gates(texts: list[str]) -> dict[str, float]:
    """``["auc=0.005", "ks=0.01"]`` → ``{"auc": 0.005, "ks": 0.01}``."""
    gates: dict[str, float] = {}
    for text in texts:
        metric, sep, value = text.partition("=")
        try:
            if not sep:
                raise ValueError
            gates[metric.strip()] = float(value)
        except ValueError:
            raise Invalid(
                f"--max-metric-drop must be METRIC=DROP, e.g. auc=0.005; got {text!r}"
            ) from None
    return gates
