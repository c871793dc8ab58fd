"""What ``finmaas optimize`` and ``finmaas convert`` gain and lose on German credit.

Run: ``.venv/bin/python benchmarks/optimize.py [--seed 7]``.

German credit is split, stratified and seeded: 60% trains the parents, 40% is
the file handed to ``optimize`` (half of it tunes the child, half evaluates
parent and child side by side). Parents:

* ``german-network-256`` and ``german-network-512``: the credit network with 2
  hidden layers of 256 or 512 units (ONNX);
* ``german-lightgbm``: LightGBM, 500 trees of the credit template's settings.

Each method runs through :func:`finmaas.optimize.optimize_version`, as the CLI
does, and prints the report's figures: artifact size, load time, latency of 1
and 64 rows (single-threaded sessions, as served), throughput at 64 rows and
held-out AUC. The "×" column is the child's rows/s over its parent's, both measured
in the same report (interleaved); parents are measured again in each report, and the
parent row shows the first. Goals (issue 8): the int8 network ≥ 1.5× the rows/s of its fp32
parent at AUC within 0.005; the distilled student ≥ 3× a 500-tree teacher at
AUC within 0.01.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from finmaas.actor import local_actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.optimize import OptimizeRun, optimize_version
from finmaas.publish.registration import register
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import encode_frame
from finmaas.training.credit import LIGHTGBM_PARAMS
from finmaas.training.neural import Layout, NetworkSettings, to_onnx, train_network

TEACHER_TREES = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finmaas-bench-optimize-") as folder:
        run(Path(folder), args.seed)


def run(folder: Path, seed: int) -> None:
    signature = german_credit_signature()
    frame = load_german_credit()
    y_all = (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    rng = np.random.default_rng(seed)
    train_rows, held_rows = [], []
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y_all == label))
        cut = round(len(rows) * 0.6)
        train_rows.append(rows[:cut])
        held_rows.append(rows[cut:])
    train = frame.iloc[np.sort(np.concatenate(train_rows))]
    held = frame.iloc[np.sort(np.concatenate(held_rows))]
    holdout = folder / "holdout.csv"
    held.to_csv(holdout, index=False)

    features = train[list(signature.feature_names)]
    x = np.asarray(encode_frame(signature, features), dtype=np.float64)
    y = (train[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    settings = Settings(home=folder / "home")
    registry = Registry.open(settings)
    store = LocalArtifactStore(settings.resolved_artifacts_dir)
    actor = local_actor()
    common: dict[str, Any] = {
        "signature": signature,
        "trained_on_encoded": True,
        "task": "binary",
        "classes": signature.classes,
        "registry": registry,
        "store": store,
        "actor": actor,
    }
    for hidden in (256, 512):
        network = train_network(
            x, y, Layout.of(signature), NetworkSettings(hidden=hidden, depth=2), seed
        )
        register(f"german-network-{hidden}", to_onnx(network, x.shape[1]), features, **common)
    categorical = [i for i, f in enumerate(signature.inputs) if f.dtype == "category"]
    booster = lgb.train(
        {**LIGHTGBM_PARAMS, "seed": seed},
        lgb.Dataset(x, y, categorical_feature=categorical),
        num_boost_round=TEACHER_TREES,
    )
    register("german-lightgbm", booster, features, **common)

    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(f"parents trained on {len(train)} rows; {len(held)} rows handed to optimize\n")
    print(
        "| parent | method | size | load ms | 1 row µs | 64 rows µs | rows/s | "
        "× rows/s | AUC | Δ AUC | agreement |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    jobs: list[tuple[str, str, dict[str, Any]]] = [
        ("german-network-256", "quantize", {"mode": "dynamic"}),
        ("german-network-256", "quantize", {"mode": "static"}),
        ("german-network-256", "quantize", {"mode": "float16"}),
        ("german-network-256", "prune", {"structure": "units", "sparsity": 0.5}),
        ("german-network-256", "prune", {"structure": "weights", "sparsity": 0.8}),
        ("german-network-512", "quantize", {"mode": "dynamic"}),
        ("german-network-512", "quantize", {"mode": "static"}),
        ("german-network-512", "prune", {"structure": "units", "sparsity": 0.5}),
        ("german-lightgbm", "prune", {}),
        ("german-lightgbm", "distill", {"student": "lightgbm"}),
        ("german-lightgbm", "distill", {"student": "network"}),
        ("german-lightgbm", "convert", {}),
    ]
    shown_parents: set[str] = set()
    for name, method, options in jobs:
        result = optimize_version(
            OptimizeRun(
                name=name,
                version=1,
                method=method,  # type: ignore[arg-type]
                data=holdout,
                target=GERMAN_CREDIT_TARGET,
                seed=seed,
                **options,
            ),
            registry,
            store,
            actor=actor,
            max_bytes=settings.max_upload_bytes,
        )
        report = result.report
        if name not in shown_parents:
            shown_parents.add(name)
            print(_row(name, "(parent)", report.parent, report.parent, None))
        label = method + "".join(f" {k}={v}" for k, v in options.items())
        print(_row(name, label, report.child, report.parent, report.fidelity.agreement))
    registry.close()


def _row(name: str, label: str, m: Any, parent: Any, agreement: float | None) -> str:
    auc = m.metrics["auc"]
    return (
        f"| {name} | {label} | {m.size_bytes / 1024:,.0f} KiB | {m.load_ms:.1f} | "
        f"{m.single_row_us:.0f} | {m.batch_us:.0f} | {m.rows_per_second:,.0f} | "
        f"{m.rows_per_second / parent.rows_per_second:.2f} | {auc:.4f} | "
        f"{auc - parent.metrics['auc']:+.4f} | "
        f"{'' if agreement is None else f'{agreement:.1%}'} |"
    )


if __name__ == "__main__":
    main()
