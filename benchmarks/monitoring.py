"""What service metrics, drift counting, the access log and the prediction log cost.

Run: ``.venv/bin/python benchmarks/monitoring.py [--duration 3] [--rounds 15] [--baseline REV]``.

One worker per configuration, the quickstart's ``credit-risk@production``, one
applicant per KServe V1 request, wrk at 16 and 64 connections. Every
configuration's server is started (and warmed) first and stays up, idle while
the others are measured, so the configurations can alternate in short runs:
``--rounds`` rounds of ``--duration`` seconds each, every round in another
order (the list rotated by one), the disks synced after each configuration's
runs so the writeback of one's log does not land in another's. Reported: the
median requests/s, and the median over rounds of the ratio to the reference
*in the same round*, which cancels the drift of a shared machine's speed over
a run (it spread single runs by ±20% on the VM of the results file, against
effects of a few per cent), with a 95% bootstrap interval of that median
(resampling the rounds). Beside them, the server's CPU time per request
(user + system, from ``/proc``, during the wrk run): one worker is bound by
one core, so the reference's CPU per request over a configuration's is its
capacity ratio.

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
import random
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
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15)
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
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for name, (served, env) in configs.items():
                servers[name] = start_server(served, env)
            for process, url in servers.values():
                wait_ready(f"{url}/v2/health/live", process)
                run_wrk(wrk, url + PATH, body, CONNECTIONS[0], 2, tmp)  # load, warm up
            names = list(configs)
            for round_number in range(args.rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    process, url = servers[name]
                    for connections in CONNECTIONS:
                        before = cpu_seconds(process.pid)
                        row = run_wrk(wrk, url + PATH, body, connections, args.duration, tmp)
                        spent = cpu_seconds(process.pid) - before
                        assert row.non_2xx == 0, f"{name}: {row.non_2xx} failed"
                        results.setdefault((name, connections), []).append(row.requests_per_s)
                        cpu.setdefault((name, connections), []).append(spent / row.requests * 1e6)
                    os.sync()  # this configuration's log reaches the disk before the next runs
        finally:
            for process, _ in servers.values():
                stop(process)
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
        f"| configuration | connections | median requests/s | runs (in round order) "
        f"| vs {reference}, same round (median) | 95% interval | server CPU µs/request "
        "| capacity vs reference, same round (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for connections in CONNECTIONS:
        base = results[(reference, connections)]
        base_cpu = cpu[(reference, connections)]
        for name in configs:
            runs = results[(name, connections)]
            used = cpu[(name, connections)]
            ratios = [r / b for r, b in zip(runs, base, strict=True)]
            low, high = median_interval(ratios)
            capacity = statistics.median(b / c for c, b in zip(used, base_cpu, strict=True))
            print(
                f"| {name} | {connections} | {statistics.median(runs):,.0f} | "
                f"{', '.join(f'{r:,.0f}' for r in runs)} | {statistics.median(ratios):.2f} | "
                f"{low:.2f}-{high:.2f} | "
                f"{statistics.median(used):.0f} | {capacity:.2f} |"
            )


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of the median of ``values`` (fixed seed)."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def start_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = start_finmaas(
        home, port, "--workers", "1", "--preload", "--insecure-no-auth", settings=env
    )
    return process, f"http://127.0.0.1:{port}"


if __name__ == "__main__":
    main()
