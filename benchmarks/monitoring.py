"""What service metrics, drift counting, the access log and the prediction log cost.

Run: ``.venv/bin/python benchmarks/monitoring.py [--duration 8] [--rounds 3] [--baseline REV]``.

One worker, the quickstart's ``credit-risk@production``, one applicant per
KServe V1 request, wrk at 16 and 64 connections, interleaved over ``--rounds``
rounds; medians of requests/s and their ratio to the reference. Beside them,
the server's CPU time per request (user + system, from ``/proc``, during the
wrk run): one worker is bound by one core, so the reference's CPU per request
over a configuration's is its capacity ratio, and it is far less disturbed by
other tenants of a shared machine than requests/s is.

Metrics counting has no off switch, so the reference is ``--baseline REV``
(default ``b76fb98``, the last commit before ``/metrics``): that revision is
checked out in a temporary git worktree and served from its own quickstart home
with drift counting and the access log off. ``--baseline none`` skips it and
compares with "metrics only".

Goals (issue 6): metrics + drift within 5% of the reference; the prediction log
at a 100% sample rate within 15% (the default Parquet format; JSON Lines is
measured beside it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from serving import (
    BIN,
    PATH,
    applicant_body,
    cpu_seconds,
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
from finmaas.registry.records import ModelUpdate

CONNECTIONS = (16, 64)
ROOT = Path(__file__).resolve().parent.parent
QUIET = {"FINMAAS_COUNT_DRIFT": "false", "FINMAAS_ACCESS_LOG": "off"}
BASELINE = "b76fb98"


def quickstart_home(home: Path) -> None:
    settings = Settings(home=home)
    registry = Registry.open(settings)
    run_quickstart(
        registry, LocalArtifactStore(settings.resolved_artifacts_dir), actor=Actor("bench")
    )
    registry.close()


def logging_home(home: Path, copy: Path) -> None:
    """A copy of ``home`` where credit-risk logs every prediction."""
    shutil.copytree(home, copy)
    registry = Registry.open(Settings(home=copy))
    registry.update_model("credit-risk", ModelUpdate(log_sample_rate=1.0), actor=Actor("bench"))
    registry.close()


def baseline_checkout(revision: str, tmp: Path) -> tuple[Path, Path]:
    """A worktree of ``revision`` and a quickstart home made by that revision's code."""
    tree = tmp / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
        check=True,
        capture_output=True,
    )
    home = tmp / "baseline-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
    env["PYTHONPATH"] = str(tree / "src")
    subprocess.run(
        [str(BIN / "finmaas"), "--home", str(home), "quickstart", "--no-serve"],
        env=env,
        check=True,
        capture_output=True,
    )
    return tree, home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE, help="a git revision, or 'none'")
    args = parser.parse_args()
    wrk = ensure_wrk()
    body = applicant_body()
    results: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        tmp = Path(temporary)
        home = tmp / "home"
        quickstart_home(home)
        logging_home(home, tmp / "home-logged")
        configs: dict[str, tuple[Path, dict[str, str]]] = {}
        tree = None
        if args.baseline != "none":
            tree, baseline_home = baseline_checkout(args.baseline, tmp)
            configs[f"before metrics ({args.baseline})"] = (
                baseline_home,
                QUIET | {"PYTHONPATH": str(tree / "src")},
            )
        configs |= {
            "metrics only": (home, QUIET),
            "metrics + drift": (home, {"FINMAAS_ACCESS_LOG": "off"}),
            "+ access log": (home, {"FINMAAS_ACCESS_LOG": str(tmp / "access.jsonl")}),
            "+ prediction log 100% (Parquet)": (tmp / "home-logged", {"FINMAAS_ACCESS_LOG": "off"}),
            "+ prediction log 100% (JSON Lines)": (
                tmp / "home-logged",
                {"FINMAAS_ACCESS_LOG": "off", "FINMAAS_PREDICTION_LOG_FORMAT": "jsonl"},
            ),
        }
        try:
            for _ in range(args.rounds):
                for name, (served, env) in configs.items():
                    run_config(wrk, body, name, served, env, args.duration, tmp, results, cpu)
        finally:
            if tree is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
        folder = tmp / "home-logged" / "predictions"
        logged = {
            suffix: sum(f.stat().st_size for f in folder.rglob(f"*{suffix}"))
            for suffix in (".parquet", ".jsonl")
        }

    command = f"benchmarks/monitoring.py --duration {args.duration} --rounds {args.rounds}"
    print_header(command + f" --baseline {args.baseline}")
    print("- 1 worker, credit-risk (production), one applicant per KServe V1 request")
    print(
        f"- prediction log written: {logged['.parquet'] / 2**20:,.0f} MiB of Parquet, "
        f"{logged['.jsonl'] / 2**20:,.0f} MiB of JSON Lines\n"
    )
    reference = next(iter(configs))
    print(
        f"| configuration | connections | median requests/s | runs | vs {reference} "
        "| server CPU µs/request | capacity vs reference |"
    )
    print("|---|---|---|---|---|---|---|")
    for connections in CONNECTIONS:
        base = statistics.median(results[(reference, connections)])
        base_cpu = statistics.median(cpu[(reference, connections)])
        for name in configs:
            runs = results[(name, connections)]
            median = statistics.median(runs)
            per_request = statistics.median(cpu[(name, connections)])
            print(
                f"| {name} | {connections} | {median:,.0f} | "
                f"{', '.join(f'{r:,.0f}' for r in runs)} | {median / base:.2f} | "
                f"{per_request:.0f} | {base_cpu / per_request:.2f} |"
            )


def run_config(
    wrk: str,
    body: bytes,
    name: str,
    home: Path,
    env: dict[str, str],
    duration: int,
    tmp: Path,
    results: dict[tuple[str, int], list[float]],
    cpu: dict[tuple[str, int], list[float]],
) -> None:
    port = free_port()
    process = start_finmaas(
        home, port, "--workers", "1", "--preload", "--insecure-no-auth", settings=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/live", process)
        for connections in CONNECTIONS:
            before = cpu_seconds(process.pid)
            row = run_wrk(wrk, url + PATH, body, connections, duration, tmp)
            used = cpu_seconds(process.pid) - before
            assert row.non_2xx == 0, f"{name}: {row.non_2xx} failed"
            results.setdefault((name, connections), []).append(row.requests_per_s)
            cpu.setdefault((name, connections), []).append(used / row.requests * 1e6)
    finally:
        stop(process)


if __name__ == "__main__":
    main()
