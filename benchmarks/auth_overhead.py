"""What authentication, authorisation, limits and metering cost on the hot path.

Run: ``.venv/bin/python benchmarks/auth_overhead.py [--duration 8] [--rounds 3] [--redis-url URL]``.

One worker, the quickstart's ``credit-risk``, one applicant per KServe V1
request, wrk at 16 and 64 connections, against three configurations of the
same server:

* ``no auth``: ``--insecure-no-auth`` (no key, no limits, anonymous metering);
* ``auth + limits``: a consumer key with a grant, requests/rows per-minute
  limits and a monthly quota set high enough never to refuse (the in-process
  limiter and the usage meter run on every request);
* ``auth + limits (Redis)``: the same key with ``--redis-url`` (one Lua
  script call to Redis per request), when a Redis URL is given.

Configurations are interleaved over ``--rounds`` rounds and the median
requests/s of each is reported with its ratio to ``no auth``, since the
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from serving import (
    PATH,
    applicant_body,
    consumer_token,
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
HIGH = 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    wrk = ensure_wrk()
    body = applicant_body()
    results: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        registry = Registry.open(settings)
        run_quickstart(
            registry, LocalArtifactStore(settings.resolved_artifacts_dir), actor=Actor("bench")
        )
        registry.close()
        token = consumer_token(home, HIGH)
        auth = {"Authorization": f"Bearer {token}"}
        configs: list[tuple[str, list[str], dict[str, str]]] = [
            ("no auth", ["--insecure-no-auth"], {}),
            ("auth + limits", [], auth),
        ]
        if args.redis_url:
            configs.append(("auth + limits (Redis)", ["--redis-url", args.redis_url], auth))
        for _ in range(args.rounds):
            for name, flags, headers in configs:
                port = free_port()
                process = start_finmaas(home, port, "--workers", "1", "--preload", *flags)
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(f"{url}/v2/health/live", process)
                    for connections in CONNECTIONS:
                        result = run_wrk(
                            wrk, url + PATH, body, connections, args.duration, Path(tmp), headers
                        )
                        assert result.non_2xx == 0, f"{name}: {result.non_2xx} refused"
                        results.setdefault((name, connections), []).append(result.requests_per_s)
                finally:
                    stop(process)

    redis = f" --redis-url {args.redis_url}" if args.redis_url else ""
    print_header(
        f"benchmarks/auth_overhead.py --duration {args.duration} --rounds {args.rounds}{redis}"
    )
    print("- 1 worker, credit-risk (production), one applicant per KServe V1 request\n")
    print("| configuration | connections | median requests/s | runs | vs no auth |")
    print("|---|---|---|---|---|")
    for connections in CONNECTIONS:
        base = statistics.median(results[("no auth", connections)])
        for name, _, _ in configs:
            runs = results[(name, connections)]
            median = statistics.median(runs)
            print(
                f"| {name} | {connections} | {median:,.0f} | "
                f"{', '.join(f'{r:,.0f}' for r in runs)} | {median / base:.2f} |"
            )


if __name__ == "__main__":
    main()
