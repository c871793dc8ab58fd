"""Registry and encoding baseline: what the serving path must cache, and what it costs.

Run: ``.venv/bin/python benchmarks/bench_registry.py [--postgres URL]``; prints a
Markdown table (medians over repeated runs on this machine, one process).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.publish.loading import load_artifact
from finmaas.quickstart import MODEL_NAME, run_quickstart
from finmaas.registry import LocalArtifactStore, NewVersion, Registry
from finmaas.schema import RecordEncoder

ACTOR = Actor("bench", is_admin=True)


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_backend(label: str, settings: Settings) -> list[tuple[str, str]]:
    registry = Registry.open(settings)
    store = LocalArtifactStore(settings.resolved_artifacts_dir)
    run_quickstart(registry, store, actor=ACTOR)
    production = registry.get_version(MODEL_NAME, "production")
    template = NewVersion(
        artifact_digest=production.artifact_digest,
        artifact_format=production.artifact_format,
        artifact_size=production.artifact_size,
        signature=production.signature,
        metrics=production.metrics,
    )
    rows = [
        (
            f"{label}: publish_version",
            median_seconds(lambda: registry.publish_version("bench", template, actor="b"), 50),
        ),
        (
            f"{label}: get_version(alias)",
            median_seconds(lambda: registry.get_version(MODEL_NAME, "production"), 300),
        ),
        (
            f"{label}: set_alias",
            median_seconds(lambda: _flip(registry), 50),
        ),
    ]
    registry.close()
    return [(name, f"{seconds * 1e3:.2f} ms") for name, seconds in rows]


_flip_state = {"next": 1}


def _flip(registry: Registry) -> None:
    version = _flip_state["next"]
    registry.set_alias("bench", "staging", version, actor="b")
    _flip_state["next"] = 2 if version == 1 else 1


def bench_encoding_and_loading(settings: Settings) -> list[tuple[str, str]]:
    registry = Registry.open(settings)
    store = LocalArtifactStore(settings.resolved_artifacts_dir)
    production = registry.get_version(MODEL_NAME, "production")
    encoder = RecordEncoder(production.signature)
    records = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).to_dict(orient="records")
    one, batch = records[:1], records[:64]
    predictor = load_artifact(store, production)
    encoded_one, encoded_batch = encoder.encode(one), encoder.encode(batch)
    out = [
        ("encode 1 record", f"{median_seconds(lambda: encoder.encode(one), 2000) * 1e6:.1f} µs"),
        ("encode 64 records", f"{median_seconds(lambda: encoder.encode(batch), 300) * 1e6:.1f} µs"),
        (
            "lightgbm predict 1 row",
            f"{median_seconds(lambda: predictor.predict(encoded_one), 2000) * 1e6:.1f} µs",
        ),
        (
            "lightgbm predict 64 rows",
            f"{median_seconds(lambda: predictor.predict(encoded_batch), 300) * 1e6:.1f} µs",
        ),
        (
            "read + sha256 + load production artifact",
            f"{median_seconds(lambda: load_artifact(store, production), 30) * 1e3:.2f} ms",
        ),
    ]
    registry.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="PostgreSQL URL of an empty database to also measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        sqlite = Settings(home=Path(home) / "sqlite")
        rows = bench_backend("sqlite", sqlite)
        if args.postgres:
            rows += bench_backend(
                "postgresql", Settings(home=Path(home) / "pg", database_url=args.postgres)
            )
        rows += bench_encoding_and_loading(sqlite)
    print(f"machine: {platform.node()} · {platform.machine()} · Python {platform.python_version()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print("| measurement | median |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
