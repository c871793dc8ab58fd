"""What drift counting and the access log cost on the serving path.

Run: ``.venv/bin/python benchmarks/monitoring.py [--duration 8] [--rounds 3]``.

One worker, the quickstart's ``credit-risk@production``, one applicant per
KServe V1 request, wrk at 16 and 64 connections, the server started with
monitoring off (``FINMAAS_COUNT_DRIFT=false``, ``FINMAAS_ACCESS_LOG=off``),
with drift counting only, and with drift counting and the access log (to a
file), interleaved over ``--rounds`` rounds; medians of requests/s and their
ratio to monitoring off. Goal (issue 6): monitoring on within 5% of off.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from serving import (
    PATH,
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

CONNECTIONS = (16, 64)
OFF = {"FINMAAS_COUNT_DRIFT": "false", "FINMAAS_ACCESS_LOG": "off"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_wrk()
    body = applicant_body()
    results: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs = {
            "monitoring off": OFF,
            "drift": {"FINMAAS_ACCESS_LOG": "off"},
            "drift + access log": {"FINMAAS_ACCESS_LOG": str(Path(tmp) / "access.jsonl")},
        }
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        registry = Registry.open(settings)
        run_quickstart(
            registry, LocalArtifactStore(settings.resolved_artifacts_dir), actor=Actor("bench")
        )
        registry.close()
        for _ in range(args.rounds):
            for name, env in configs.items():
                port = free_port()
                process = start_finmaas(
                    home, port, "--workers", "1", "--preload", "--insecure-no-auth", settings=env
                )
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(f"{url}/v2/health/live", process)
                    for connections in CONNECTIONS:
                        row = run_wrk(wrk, url + PATH, body, connections, args.duration, Path(tmp))
                        assert row.non_2xx == 0, f"{name}: {row.non_2xx} failed"
                        results.setdefault((name, connections), []).append(row.requests_per_s)
                finally:
                    stop(process)

    print_header(f"benchmarks/monitoring.py --duration {args.duration} --rounds {args.rounds}")
    print("- 1 worker, credit-risk (production), one applicant per KServe V1 request\n")
    print("| configuration | connections | median requests/s | runs | vs monitoring off |")
    print("|---|---|---|---|---|")
    for connections in CONNECTIONS:
        base = statistics.median(results[("monitoring off", connections)])
        for name in configs:
            runs = results[(name, connections)]
            median = statistics.median(runs)
            print(
                f"| {name} | {connections} | {median:,.0f} | "
                f"{', '.join(f'{r:,.0f}' for r in runs)} | {median / base:.2f} |"
            )


if __name__ == "__main__":
    main()
