"""Parent against child, side by side: what an optimisation gained and what it lost.

:func:`compare` loads both artifacts with the runtime that serves them and
measures, on the same held-out rows:

* artifact size, and load time (median of :data:`LOAD_ROUNDS` loads);
* latency of one row and of a batch of :data:`BATCH` rows (medians over
  interleaved rounds, so a noisy machine slows both alike), and the batch's
  throughput in rows/s;
* every metric of :data:`METRICS`, at the parent's decision threshold for the
  decision metrics (the served rule does not move with the swap);
* fidelity: the share of rows whose decision is the same, and the mean and
  largest change of the score.

:func:`check_gate` refuses a child that loses more of a metric than allowed, and
:func:`check_speedup` one that is slower than asked; :func:`cost_warning` says when
a child is larger or slower than its parent, which :func:`render` prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from finmaas.errors import Invalid
from finmaas.runtimes import ModelFormat, Predictor, load_predictor
from finmaas.schema import ModelSignature
from finmaas.training.metrics import (
    CostMatrix,
    accuracy,
    brier,
    expected_cost,
    ks_statistic,
    log_loss,
    roc_auc,
)

BATCH = 64
LOAD_ROUNDS = 5
TIMING_ROUNDS = 7
CALLS_PER_ROUND = 40
HIGHER_IS_BETTER = ("auc", "ks", "gini", "accuracy")
LOWER_IS_BETTER = ("brier", "log_loss", "expected_cost")
METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
"""What the report measures on the held-out rows, and what a gate may name."""


@dataclass(frozen=True)
class Artifact:
    data: bytes
    fmt: ModelFormat


@dataclass(frozen=True)
class Measured:
    size_bytes: int
    load_ms: float
    single_row_us: float
    batch_us: float
    rows_per_second: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class Fidelity:
    agreement: float
    """Share of rows given the same decision (accept or reject) at the threshold."""
    mean_abs_change: float
    max_abs_change: float


@dataclass(frozen=True)
class Report:
    parent: Measured
    child: Measured
    fidelity: Fidelity
    rows: int
    threshold: float

    def deltas(self) -> dict[str, float]:
        """Child minus parent, for every metric."""
        return {k: self.child.metrics[k] - self.parent.metrics[k] for k in self.parent.metrics}

    def drops(self) -> dict[str, float]:
        """How much worse the child is on each metric (negative: better)."""
        return {k: -delta if k in HIGHER_IS_BETTER else delta for k, delta in self.deltas().items()}

    @property
    def speedup(self) -> float:
        """The child's rows/s over its parent's, at :data:`BATCH` rows."""
        return self.child.rows_per_second / self.parent.rows_per_second

    @property
    def size_ratio(self) -> float:
        """The child's artifact size over its parent's."""
        return self.child.size_bytes / self.parent.size_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "threshold": self.threshold,
            "parent": asdict(self.parent),
            "child": asdict(self.child),
            "deltas": self.deltas(),
            "fidelity": asdict(self.fidelity),
            "speedup": self.speedup,
        }


def compare(
    parent: Artifact,
    child: Artifact,
    signature: ModelSignature,
    x: NDArray[np.float64],
    y: NDArray[np.int_] | None,
    *,
    threshold: float,
    costs: CostMatrix,
) -> Report:
    """Measure both artifacts on the held-out rows ``x`` (encoded) with labels ``y``
    (without labels, no metrics)."""
    loaded = [_load(a, signature) for a in (parent, child)]
    scores = [np.asarray(p.predict(x), dtype=np.float64) for p, _ in loaded]
    batch = np.resize(x, (BATCH, x.shape[1])) if len(x) < BATCH else x[:BATCH]
    single = x[:1]
    single_us: list[list[float]] = [[], []]
    batch_us: list[list[float]] = [[], []]
    for _ in range(TIMING_ROUNDS):
        for side, (predictor, _) in enumerate(loaded):
            single_us[side].append(_median_call_us(predictor, single))
            batch_us[side].append(_median_call_us(predictor, batch))
    measured = [
        Measured(
            size_bytes=len(artifact.data),
            load_ms=load_ms,
            single_row_us=float(np.median(single_us[side])),
            batch_us=float(np.median(batch_us[side])),
            rows_per_second=BATCH / (float(np.median(batch_us[side])) * 1e-6),
            metrics=held_out_metrics(y, scores[side], threshold, costs) if y is not None else {},
        )
        for side, (artifact, (_, load_ms)) in enumerate(zip((parent, child), loaded, strict=True))
    ]
    change = np.abs(scores[1] - scores[0])
    fidelity = Fidelity(
        agreement=float(np.mean((scores[0] >= threshold) == (scores[1] >= threshold))),
        mean_abs_change=float(change.mean()),
        max_abs_change=float(change.max()),
    )
    return Report(measured[0], measured[1], fidelity, len(x), threshold)


def held_out_metrics(
    y: NDArray[np.int_], p_bad: NDArray[np.float64], threshold: float, costs: CostMatrix
) -> dict[str, float]:
    auc = roc_auc(y, p_bad)
    return {
        "auc": auc,
        "ks": ks_statistic(y, p_bad),
        "gini": 2.0 * auc - 1.0,
        "accuracy": accuracy(y, p_bad, threshold),
        "brier": brier(y, p_bad),
        "log_loss": log_loss(y, p_bad),
        "expected_cost": expected_cost(y, p_bad, threshold, costs),
    }


def parse_gate(limits: Mapping[str, object]) -> dict[str, float]:
    """Check a gate: each named metric is one the report measures, each limit a
    finite number ≥ 0."""
    gate: dict[str, float] = {}
    for name, limit in limits.items():
        if name not in METRICS:
            raise Invalid(f"cannot gate on {name!r}: the report measures {', '.join(METRICS)}")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not math.isfinite(limit)
            or limit < 0
        ):
            raise Invalid(f"the allowed drop of {name!r} must be a number ≥ 0, got {limit!r}")
        gate[name] = float(limit)
    return gate


def check_gate(report: Report, gate: Mapping[str, float]) -> None:
    """Refuse the child when it loses more of a gated metric than allowed."""
    drops = report.drops()
    for name, limit in gate.items():
        if drops[name] > limit + 1e-12:  # a loss of exactly the limit passes
            before, after = report.parent.metrics[name], report.child.metrics[name]
            raise Invalid(
                f"gate not met: {name} got worse by {drops[name]:.4f} ({before:.4f} → "
                f"{after:.4f}) on {report.rows} held-out rows, more than the {limit:g} allowed; "
                "no version was registered"
            )


def check_min_speedup(min_speedup: object) -> float | None:
    """Check a speed gate: ``None`` (none) or a finite number > 0."""
    if min_speedup is None:
        return None
    if (
        isinstance(min_speedup, bool)
        or not isinstance(min_speedup, int | float)
        or not math.isfinite(min_speedup)
        or min_speedup <= 0
    ):
        raise Invalid(f"min_speedup must be a number > 0, got {min_speedup!r}")
    return float(min_speedup)


def check_speedup(report: Report, min_speedup: float | None) -> None:
    """Refuse the child when it serves :data:`BATCH`-row batches at less than
    ``min_speedup`` × its parent's rows/s (exactly the minimum passes)."""
    if min_speedup is None or report.speedup >= min_speedup:
        return
    raise Invalid(
        f"speed gate not met: the child serves {report.child.rows_per_second:,.0f} rows/s at "
        f"{BATCH} rows, ×{report.speedup:.2f} its parent's {report.parent.rows_per_second:,.0f}, "
        f"less than the ×{min_speedup:g} asked (min_speedup); no version was registered"
    )


def cost_warning(report: Report) -> str | None:
    """A sentence when the child is larger or slower than its parent, else None."""
    worse = []
    if report.size_ratio > 1:
        worse.append(f"larger ({report.child.size_bytes:,} B, ×{report.size_ratio:.2f} the size)")
    if report.speedup < 1:
        worse.append(
            f"slower ({report.child.rows_per_second:,.0f} rows/s at {BATCH} rows, "
            f"×{report.speedup:.2f} the speed)"
        )
    if not worse:
        return None
    gate = (
        " A speed gate (--min-speedup, the job option min_speedup) refuses a slower child."
        if report.speedup < 1
        else ""
    )
    return f"Warning: this child is {' and '.join(worse)} than its parent.{gate}"


def render(report: Report, parent: str, child: str) -> str:
    """The report as a Markdown table."""
    p, c = report.parent, report.child
    lines = [
        f"| | {parent} | {child} | change |",
        "|---|---|---|---|",
        _row(
            "artifact size",
            f"{p.size_bytes:,} B",
            f"{c.size_bytes:,} B",
            f"×{c.size_bytes / p.size_bytes:.2f}",
        ),
        _row(
            "load time",
            f"{p.load_ms:.1f} ms",
            f"{c.load_ms:.1f} ms",
            f"×{c.load_ms / p.load_ms:.2f}",
        ),
        _row(
            "latency, 1 row",
            f"{p.single_row_us:.0f} µs",
            f"{c.single_row_us:.0f} µs",
            f"×{c.single_row_us / p.single_row_us:.2f}",
        ),
        _row(
            f"latency, {BATCH} rows",
            f"{p.batch_us:.0f} µs",
            f"{c.batch_us:.0f} µs",
            f"×{c.batch_us / p.batch_us:.2f}",
        ),
        _row(
            "throughput",
            f"{p.rows_per_second:,.0f} rows/s",
            f"{c.rows_per_second:,.0f} rows/s",
            f"×{c.rows_per_second / p.rows_per_second:.2f}",
        ),
    ]
    for name in (m for m in METRICS if m in p.metrics):
        delta = c.metrics[name] - p.metrics[name]
        lines.append(
            _row(name, f"{p.metrics[name]:.4f}", f"{c.metrics[name]:.4f}", f"{delta:+.4f}")
        )
    f = report.fidelity
    lines += [
        "",
        f"Held-out rows: {report.rows}; decisions at threshold {report.threshold:.4f}.",
        f"Fidelity: {f.agreement:.1%} of decisions unchanged; score change mean "
        f"{f.mean_abs_change:.4f}, largest {f.max_abs_change:.4f}.",
    ]
    warning = cost_warning(report)
    if warning is not None:
        lines.append(warning)
    return "\n".join(lines)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _load(artifact: Artifact, signature: ModelSignature) -> tuple[Predictor, float]:
    times = []
    predictor = None
    for _ in range(LOAD_ROUNDS):
        start = time.perf_counter()
        predictor = load_predictor(artifact.data, artifact.fmt, signature)
        times.append((time.perf_counter() - start) * 1e3)
    assert predictor is not None
    return predictor, float(np.median(times))


def _median_call_us(predictor: Predictor, x: NDArray[np.float64]) -> float:
    predictor.predict(x)  # warm
    times = []
    for _ in range(CALLS_PER_ROUND):
        start = time.perf_counter()
        predictor.predict(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e6
