"""What an explanation costs next to a prediction, on one server in one run.

Run: ``.venv/bin/python benchmarks/explain.py [--duration 8] [--rounds 3]``.

One worker, the quickstart (5-fold) with both versions of ``credit-risk``,
one applicant per KServe V1 request, wrk at 16 connections. For each version
(LightGBM: TreeSHAP; the scorecard: additive contributions) ``:predict`` and
``:explain`` (4 reasons) alternate over ``--rounds`` rounds on the same
server; the medians of requests/s and of p99 are reported with the ratios
the issue sets as goals: explain p99 ≤ 3× predict p99, explain throughput
≥ 30% of predict's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import httpx
from serving import (
    applicant_body,
    ensure_wrk,
    free_port,
    print_header,
    run_wrk,
    start_finmaas,
    stop,
    wait_ready,
)

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.quickstart import run_quickstart
from finmaas.registry import LocalArtifactStore, Registry

CONNECTIONS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_wrk()
    body = applicant_body()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    formats: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        registry = Registry.open(settings)
        quickstart = run_quickstart(
            registry, LocalArtifactStore(settings.resolved_artifacts_dir), actor=Actor("bench")
        )
        registry.close()
        for version in quickstart.versions:
            formats[str(version.version)] = version.artifact_format
        port = free_port()
        process = start_finmaas(home, port, "--workers", "1", "--insecure-no-auth")
        url = f"http://127.0.0.1:{port}/v1/models/credit-risk"
        try:
            wait_ready(f"http://127.0.0.1:{port}/v2/health/live", process)
            headers = {"content-type": "application/json"}
            for version in formats:
                for verb in ("predict", "explain"):  # load and warm both paths
                    warm = httpx.post(
                        f"{url}:{verb}?version={version}", content=body, headers=headers
                    )
                    assert warm.status_code == 200, warm.text
            for _ in range(args.rounds):
                for version in formats:
                    for verb in ("predict", "explain"):
                        row = run_wrk(
                            wrk,
                            f"{url}:{verb}?version={version}",
                            body,
                            CONNECTIONS,
                            args.duration,
                            Path(tmp),
                        )
                        assert row.non_2xx == 0, f"{verb} v{version}: {row.non_2xx} failed"
                        results.setdefault((version, verb), []).append(
                            (row.requests_per_s, row.p99_ms)
                        )
        finally:
            stop(process)

    print_header(f"benchmarks/explain.py --duration {args.duration} --rounds {args.rounds}")
    print(f"- 1 worker, {CONNECTIONS} connections, one applicant per request, 4 reasons\n")
    print(
        "| version | call | median requests/s | median p99 ms | throughput vs predict | p99 vs predict |"
    )
    print("|---|---|---|---|---|---|")
    for version, fmt in formats.items():
        predict_rps = statistics.median(r for r, _ in results[(version, "predict")])
        predict_p99 = statistics.median(p for _, p in results[(version, "predict")])
        for verb in ("predict", "explain"):
            rps = statistics.median(r for r, _ in results[(version, verb)])
            p99 = statistics.median(p for _, p in results[(version, verb)])
            print(
                f"| {version} ({fmt}) | {verb} | {rps:,.0f} | {p99:.2f} | "
                f"{rps / predict_rps:.2f} | {p99 / predict_p99:.2f} |"
            )


if __name__ == "__main__":
    main()
