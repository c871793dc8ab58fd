"""Serving benchmark: finmaas vs the HTTP floor, driven by wrk, in one run.

Run: ``.venv/bin/python benchmarks/serving.py [--duration 10] [--workers 1]
[--baseline OTHER/src]``. Starts ``finmaas serve`` on a fresh home with the
quickstart models (and, with ``--baseline``, the same command from another
checkout's sources, to measure a change before and after in one run) and the
floor app (benchmarks/floor_app.py) under uvicorn with the same worker count;
then, at concurrency 1, 16 and 64, drives each target in turn with wrk, one German
Credit applicant per request, checks the responses, and prints a Markdown report
(machine, date, versions, commands, requests/s, p50, p99, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.publish.loading import load_version
from finmaas.quickstart import run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import RecordEncoder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONCURRENCY = (1, 16, 64)
PATH = "/v1/models/credit-risk:predict"


@dataclass
class Row:
    target: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> float:
    start = time.monotonic()
    while time.monotonic() - start < 60:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return time.monotonic() - start
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not start")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return "wrk"


def run_wrk(
    wrk: str,
    url: str,
    body: bytes,
    connections: int,
    duration: int,
    script_dir: Path,
    headers: dict[str, str] | None = None,
) -> Row:
    script = script_dir / "post.lua"
    extra = "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in (headers or {}).items()
    )
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + extra
    )
    threads = min(connections, 2)
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _latency(out, "50%")
    p99 = _latency(out, "99%")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Row("", connections, rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0, requests)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux ``/proc``)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)", out)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def start_finmaas(
    home: Path,
    port: int,
    *flags: str,
    settings: dict[str, str] | None = None,
    source: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``finmaas serve`` on ``home`` in a clean environment: no ``FINMAAS_*`` variables
    but the given ``settings`` (``{"FINMAAS_COUNT_DRIFT": "false"}``); ``source``: serve
    the package in that ``src`` folder (another checkout) instead of the installed one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
    env.update(settings or {})
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return subprocess.Popen(
        [str(BIN / "finmaas"), "--home", str(home), "serve", "--port", str(port), *flags],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_header(command: str) -> None:
    """The machine, the date and the command, as every results section starts."""
    print(
        f"- machine: {platform.node()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- command: `.venv/bin/python {command}`")


def first_applicant() -> dict[str, Any]:
    """German Credit's first applicant as raw JSON-ready values."""
    first_row = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).iloc[0]
    return {str(k): v.item() if hasattr(v, "item") else v for k, v in first_row.items()}


def applicant_body() -> bytes:
    """A KServe V1 body with that applicant."""
    return json.dumps({"instances": [first_applicant()]}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the src folder of another checkout (e.g. a git worktree of the code before a "
        "change): served too, and measured in the same run, round by round",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    applicant = first_applicant()
    body = json.dumps({"instances": [applicant]}).encode()
    rows: list[Row] = []
    cold_starts: dict[str, float] = {}
    flags = ("--workers", str(args.workers), "--preload", "--insecure-no-auth")
    # the auth cost is measured in auth_overhead.py
    sources: dict[str, Path | None] = {"finmaas": None}
    if args.baseline is not None:
        sources["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home)
        registry = Registry.open(settings)
        store = LocalArtifactStore(settings.resolved_artifacts_dir)
        run_quickstart(registry, store, actor=Actor("bench"))
        version, predictor = load_version(registry, store, "credit-risk", "production")
        registry.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
        expected = predictor.predict(RecordEncoder(version.signature).encode([applicant]))[0]

        servers: dict[str, subprocess.Popen[bytes]] = {}
        urls: dict[str, str] = {}
        try:
            for target, source in sources.items():  # one at a time: cold starts apart
                port = free_port()
                started = time.monotonic()
                servers[target] = start_finmaas(home, port, *flags, source=source)
                urls[target] = url = f"http://127.0.0.1:{port}"
                wait_ready(f"{url}/v2/health/live", servers[target])
                first = httpx.post(
                    url + PATH, content=body, headers={"content-type": "application/json"}
                )
                cold_starts[target] = time.monotonic() - started
                assert (
                    first.status_code == 200
                    and abs(first.json()["predictions"][0]["probability"] - expected) < 1e-9
                ), first.text
            floor_port = free_port()
            servers["floor"] = subprocess.Popen(
                [
                    str(BIN / "uvicorn"),
                    "floor_app:app",
                    "--port",
                    str(floor_port),
                    "--workers",
                    str(args.workers),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                cwd=HERE,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            urls["floor"] = f"http://127.0.0.1:{floor_port}"
            wait_ready(urls["floor"], servers["floor"])
            for c in CONCURRENCY:  # each round drives every target in turn
                for target, url in urls.items():
                    row = run_wrk(wrk, url + PATH, body, c, args.duration, Path(tmp))
                    row.target = target
                    rows.append(row)
            big = json.dumps({"instances": [applicant] * 1000}).encode()
            check = httpx.post(
                urls["finmaas"] + PATH, content=big, headers={"content-type": "application/json"}
            )
            assert check.status_code == 200
            assert len(check.json()["predictions"]) == 1000
            batch = run_wrk(wrk, urls["finmaas"] + PATH, big, 2, args.duration, Path(tmp))
            batch_rows_per_s = batch.requests_per_s * 1000
        finally:
            for process in servers.values():
                stop(process)

        encoded = RecordEncoder(version.signature).encode([applicant] * 1000)
        t = []
        for _ in range(50):
            t0 = time.perf_counter()
            predictor.predict(encoded)
            t.append(time.perf_counter() - t0)
        in_process_rows_per_s = 1000 / float(np.median(t))

    baseline = f" --baseline {args.baseline}" if args.baseline is not None else ""
    print_header(
        f"benchmarks/serving.py --duration {args.duration} --workers {args.workers}{baseline}"
    )
    print(
        f"- model: credit-risk@{version.version} ({version.artifact_format}), one applicant per request, KServe V1 JSON"
    )
    for target, seconds in cold_starts.items():
        print(
            f"- cold start of {target} (`finmaas serve` to first correct prediction): {seconds:.2f} s"
        )
    print("\n| target | connections | requests/s | p50 ms | p99 ms | non-2xx | /floor |")
    print("|---|---|---|---|---|---|---|")
    floor_rps = {r.connections: r.requests_per_s for r in rows if r.target == "floor"}
    for r in rows:
        ratio = f"{r.requests_per_s / floor_rps[r.connections]:.2f}" if r.target != "floor" else ""
        print(
            f"| {r.target} | {r.connections} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.non_2xx} | {ratio} |"
        )
    if args.baseline is not None:
        rps = {(r.target, r.connections): r.requests_per_s for r in rows}
        ratios = ", ".join(
            f"c={c}: {rps['finmaas', c] / rps['baseline', c]:.2f}" for c in CONCURRENCY
        )
        print(f"\nfinmaas/baseline requests/s: {ratios}")
    print(
        f"\n1,000-row requests (wrk, 2 connections): {batch_rows_per_s:,.0f} rows/s "
        f"(p50 {batch.p50_ms:.1f} ms, p99 {batch.p99_ms:.1f} ms, non-2xx {batch.non_2xx}); in-process "
        f"`Predictor.predict` on 1,000 rows: {in_process_rows_per_s:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
