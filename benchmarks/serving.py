"""Serving benchmark: finmaas in its main configurations vs the HTTP floor, in one run.

Run: ``.venv/bin/python benchmarks/serving.py [--duration 10] [--baseline OTHER/src]
[--profile DIR]``.

Builds a quickstart home (and a copy of it for ``governed``), then starts these
targets, all on 127.0.0.1 with ``--preload``:

* ``floor``: the floor app (benchmarks/floor_app.py) under uvicorn, 1 worker;
* ``bare``: ``finmaas serve --workers 1 --insecure-no-auth --access-log off``
  (service metrics and drift counting on, as by default);
* ``default``: 1 worker with the defaults: a consumer API key (``Authorization:
  Bearer``), the access log on (written to a file in the temporary folder, not
  stdout), metrics and drift counting;
* ``governed``: ``default`` plus what a governed model costs: a key with
  requests/rows per-minute limits and a monthly quota (set too high to refuse),
  and, in its own home, ``credit-risk`` with decision records on and 10% of its
  predictions logged;
* ``bare-2w``: ``bare`` with ``--workers 2``;
* ``baseline`` (with ``--baseline``): ``bare`` served from another checkout's
  sources, to measure a change before and after in one run.

First the cold start: ``finmaas serve`` (``bare``, and ``baseline`` if given) from
launch to the first correct prediction, started and stopped 3 times, median
reported. Then every target is started and checked (its first prediction against
the in-process one) and warmed up (1 s of wrk), and at concurrency 1, 16 and 64
each round drives every target in turn with wrk, one German Credit applicant per
request, measuring the server's CPU time (user + system, from ``/proc``) beside
wrk's numbers; every non-2xx answer and socket error is counted as an error. Then
1,000-row requests to ``bare`` (2 connections) against in-process
``Predictor.predict``. Printed: a Markdown report (machine, date, versions,
command, cold start, a table with requests/s, p50, p99, errors, server CPU µs per
request and the ratio to the floor, then the ratios and latencies the serving
goals are about). The script exits with status 1 if any request failed.

``--profile DIR``: after each measured c=64 run of ``bare``, ``default`` and
``governed``, a second wrk run of the same length under ``py-spy record``
(``--subprocesses --rate 250 --nonblocking``) writes ``DIR/serving-<target>.svg``;
the measured numbers never come from a profiled run.
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
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
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
from finmaas.registry import LocalArtifactStore, ModelVersion, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.records import ModelUpdate
from finmaas.runtimes import Predictor
from finmaas.schema import RecordEncoder
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONCURRENCY = (1, 16, 64)
PATH = "/v1/models/credit-risk:predict"
HIGH = 10**9  # per-minute limits and a monthly quota no benchmark reaches
QUIET = ("--insecure-no-auth", "--access-log", "off")
COLD_STARTS = 3
PROFILED = ("bare", "default", "governed")
BATCH_ROWS = 1000


@dataclass
class Row:
    target: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int = 0
    socket_errors: int = 0
    cpu_us_per_request: float = 0.0


@dataclass(frozen=True)
class Target:
    """A server to drive: the floor app (no ``home``) or ``finmaas serve`` on ``home``."""

    name: str
    flags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    home: Path | None = None
    workers: int = 1
    source: Path | None = None
    """Serve the package in this ``src`` folder (another checkout) instead of ours."""


@dataclass(frozen=True)
class Server:
    target: Target
    process: subprocess.Popen[bytes]
    url: str


@dataclass(frozen=True)
class Reference:
    """The served model and what it predicts in process for the benchmark's applicant."""

    version: ModelVersion
    predictor: Predictor
    applicant: dict[str, Any]
    probability: float


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
    sockets = re.search(
        r"Socket errors:\s+connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    return Row(
        "",
        connections,
        rps,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        requests,
        socket_errors,
    )


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


# --- homes and targets ------------------------------------------------------------------


def quickstart_home(home: Path) -> Reference:
    """A fresh home with the quickstart models, and credit-risk's in-process prediction."""
    settings = Settings(home=home)
    registry = Registry.open(settings)
    try:
        store = LocalArtifactStore(settings.resolved_artifacts_dir)
        run_quickstart(registry, store, actor=Actor("bench"))
        version, predictor = load_version(registry, store, "credit-risk", "production")
    finally:
        registry.close()
    applicant = first_applicant()
    encoded = RecordEncoder(version.signature).encode([applicant])
    return Reference(version, predictor, applicant, float(predictor.predict(encoded)[0]))


def consumer_token(home: Path, limit: int | None = None) -> str:
    """A consumer key allowed to predict with credit-*; ``limit``: its requests and rows
    per minute and its monthly quota."""
    registry = Registry.open(Settings(home=home))
    try:
        return issue_key(
            KeyStore(registry),
            name="bench",
            role="consumer",
            actor="local:bench",
            tenant="retail",
            grants=(parse_grant("credit-*:predict"),),
            requests_per_minute=limit,
            rows_per_minute=limit,
            monthly_quota=limit,
        ).token
    finally:
        registry.close()


def governed_home(home: Path, copy: Path) -> None:
    """A copy of ``home`` where credit-risk records its decisions and logs 10% of rows."""
    shutil.copytree(home, copy)
    registry = Registry.open(Settings(home=copy))
    try:
        update = ModelUpdate(log_sample_rate=0.1, decisions=True)
        registry.update_model("credit-risk", update, actor=Actor("bench"))
    finally:
        registry.close()


def make_targets(tmp: Path, home: Path, baseline: Path | None) -> list[Target]:
    """The targets of one round, in the order each round drives them."""
    governed = tmp / "home-governed"
    governed_home(home, governed)  # before the keys: each home gets its own

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def access_log(name: str) -> tuple[str, ...]:
        return ("--access-log", str(tmp / f"access-{name}.jsonl"))

    targets = [
        Target("floor"),
        Target("bare", QUIET, home=home),
        Target("default", access_log("default"), bearer(consumer_token(home)), home),
        Target(
            "governed", access_log("governed"), bearer(consumer_token(governed, HIGH)), governed
        ),
        Target("bare-2w", QUIET, home=home, workers=2),
    ]
    if baseline is not None:
        targets.insert(2, Target("baseline", QUIET, home=home, source=baseline))
    return targets


# --- servers ----------------------------------------------------------------------------


def start(target: Target) -> Server:
    """Start ``target`` on a free port (not yet ready)."""
    port = free_port()
    workers = ("--workers", str(target.workers))
    if target.home is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
        process = subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "floor_app:app",
                "--port",
                str(port),
                *workers,
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
    else:
        flags = (*workers, "--preload", *target.flags)
        process = start_finmaas(target.home, port, *flags, source=target.source)
    return Server(target, process, f"http://127.0.0.1:{port}")


def check_first(server: Server, body: bytes, reference: Reference) -> None:
    """Wait for ``server`` and check one answer (a finmaas one against the in-process
    prediction)."""
    health = "/v2/health/live" if server.target.home is not None else "/"
    wait_ready(server.url + health, server.process)
    headers = {"content-type": "application/json", **server.target.headers}
    answer = httpx.post(server.url + PATH, content=body, headers=headers)
    assert answer.status_code == 200, f"{server.target.name}: {answer.text}"
    if server.target.home is not None:
        probability = answer.json()["predictions"][0]["probability"]
        assert abs(probability - reference.probability) < 1e-9, (server.target.name, answer.text)


def cold_start(target: Target, body: bytes, reference: Reference) -> float:
    """Seconds from launching ``target`` to its first correct prediction."""
    started = time.monotonic()
    server = start(target)
    try:
        check_first(server, body, reference)
        return time.monotonic() - started
    finally:
        stop(server.process)


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Driver:
    """wrk with the benchmark's request, driving one server at a time."""

    wrk: str
    body: bytes
    duration: int
    tmp: Path

    def run(self, server: Server, connections: int, duration: int | None = None) -> Row:
        """One wrk run, with the server's CPU time per request."""
        before = cpu_seconds(server.process.pid)
        row = run_wrk(
            self.wrk,
            server.url + PATH,
            self.body,
            connections,
            duration or self.duration,
            self.tmp,
            server.target.headers,
        )
        spent = cpu_seconds(server.process.pid) - before
        row.target = server.target.name
        row.cpu_us_per_request = spent / max(row.requests, 1) * 1e6
        os.sync()  # this target's logs reach the disk before the next run
        return row

    def profile(self, server: Server, py_spy: Path, output: Path) -> Row:
        """A c=64 run (not measured) under ``py-spy record``, written to ``output`` (SVG)."""
        spy = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--rate",
                "250",
                "--nonblocking",
                "--duration",
                str(self.duration),
                "--format",
                "flamegraph",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        row = self.run(server, CONCURRENCY[-1])
        _, errors = spy.communicate(timeout=self.duration + 60)
        if spy.returncode != 0 or not output.exists():
            raise RuntimeError(f"py-spy failed on {server.target.name}: {errors.decode()}")
        return row


def in_process_rows_per_s(reference: Reference) -> float:
    """``Predictor.predict`` on 1,000 rows, median of 50 calls."""
    encoded = RecordEncoder(reference.version.signature).encode([reference.applicant] * BATCH_ROWS)
    seconds = []
    for _ in range(50):
        t0 = time.perf_counter()
        reference.predictor.predict(encoded)
        seconds.append(time.perf_counter() - t0)
    return BATCH_ROWS / float(np.median(seconds))


def batch_run(driver: Driver, server: Server) -> Row:
    """1,000-row requests to ``server``, 2 connections (the answer's size checked first)."""
    big = json.dumps({"instances": [first_applicant()] * BATCH_ROWS}).encode()
    check = httpx.post(server.url + PATH, content=big, headers={"content-type": "application/json"})
    assert check.status_code == 200, check.text
    assert len(check.json()["predictions"]) == BATCH_ROWS
    return replace(driver, body=big).run(server, 2)


# --- the report -------------------------------------------------------------------------


@dataclass
class Results:
    reference: Reference
    cold_starts: dict[str, list[float]]
    rows: list[Row]
    batch: Row
    in_process_rows_per_s: float
    flames: dict[str, tuple[Path, Row]]

    def rps(self, target: str, connections: int) -> float:
        return self.row(target, connections).requests_per_s

    def row(self, target: str, connections: int) -> Row:
        return next(r for r in self.rows if (r.target, r.connections) == (target, connections))

    def failed(self) -> list[Row]:
        return [r for r in [*self.rows, self.batch] if r.non_2xx or r.socket_errors]


def print_report(results: Results, command: str) -> None:
    version = results.reference.version
    print_header(command)
    print(
        f"- model: credit-risk@{version.version} ({version.artifact_format}), "
        "one applicant per request, KServe V1 JSON; servers on 127.0.0.1, --preload"
    )
    for target, runs in results.cold_starts.items():
        print(
            f"- cold start (median of {len(runs)}) of {target} (`finmaas serve` to first "
            f"correct prediction): {statistics.median(runs):.2f} s "
            f"(runs: {', '.join(f'{s:.2f}' for s in runs)})"
        )
    print(
        "\n| target | connections | requests/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| server CPU µs/request | /floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results.rows:
        floor = results.rps("floor", r.connections)
        ratio = f"{r.requests_per_s / floor:.2f}" if r.target != "floor" else ""
        print(
            f"| {r.target} | {r.connections} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.non_2xx} | {r.socket_errors} "
            f"| {r.cpu_us_per_request:,.0f} | {ratio} |"
        )
    for r in results.failed():
        print(
            f"\n**ERROR**: {r.target} at c={r.connections}: {r.non_2xx} non-2xx answers, "
            f"{r.socket_errors} socket errors"
        )
    print_ratios(results)
    if results.flames:
        print("\nProfiles (py-spy, a second c=64 run after the measured one):")
        for target, (path, row) in results.flames.items():
            print(
                f"- {target}: {path} (while profiled: {row.requests_per_s:,.0f} requests/s, "
                f"non-2xx {row.non_2xx})"
            )


def print_ratios(results: Results) -> None:
    top = CONCURRENCY[-1]
    rps = results.rps

    def ratio(label: str, value: float, goal: str) -> None:
        print(f"{label} at c={top}: {value:.2f} (goal {goal})")

    print("\nRatios")
    ratio("bare/floor", rps("bare", top) / rps("floor", top), "≥ 0.70")
    ratio("default/bare", rps("default", top) / rps("bare", top), "≥ 0.90")
    ratio("governed/bare", rps("governed", top) / rps("bare", top), "≥ 0.85")
    ratio("2 workers/1 worker (bare)", rps("bare-2w", top) / rps("bare", top), "≥ 1.2")
    if any(r.target == "baseline" for r in results.rows):
        print(
            "bare/baseline requests/s: "
            + ", ".join(f"c={c}: {rps('bare', c) / rps('baseline', c):.2f}" for c in CONCURRENCY)
        )
    print()
    print(f"p99 of bare at c={top}: {results.row('bare', top).p99_ms:.2f} ms (goal ≤ 8 ms)")
    first = CONCURRENCY[0]
    print(f"p99 of bare at c={first}: {results.row('bare', first).p99_ms:.2f} ms (goal ≤ 1 ms)")
    cold = statistics.median(results.cold_starts["bare"])
    print(f"cold start of bare (median of {COLD_STARTS}): {cold:.2f} s (goal ≤ 2 s)")
    batch = results.batch
    batch_rows_per_s = batch.requests_per_s * BATCH_ROWS
    print(
        f"1,000-row requests to bare (wrk, 2 connections): {batch_rows_per_s:,.0f} rows/s "
        f"(p50 {batch.p50_ms:.1f} ms, p99 {batch.p99_ms:.1f} ms, non-2xx {batch.non_2xx}); "
        f"in-process `Predictor.predict` on 1,000 rows: {results.in_process_rows_per_s:,.0f} "
        f"rows/s; served/in-process: {batch_rows_per_s / results.in_process_rows_per_s:.2f} "
        "(goal ≥ 0.5)"
    )
    cpu = ", ".join(
        f"{r.target} {r.cpu_us_per_request:,.0f}"
        for r in results.rows
        if r.connections == top and r.target != "floor"
    )
    print(f"server CPU µs/request at c={top}: {cpu}")


# --- main -------------------------------------------------------------------------------


def measure(args: argparse.Namespace, wrk: str, py_spy: Path | None, tmp: Path) -> Results:
    reference = quickstart_home(tmp / "home")
    body = json.dumps({"instances": [reference.applicant]}).encode()
    targets = make_targets(tmp, tmp / "home", args.baseline)
    cold_starts = {
        t.name: [cold_start(t, body, reference) for _ in range(COLD_STARTS)]
        for t in targets
        if t.name in ("bare", "baseline")
    }
    driver = Driver(wrk, body, args.duration, tmp)
    servers: list[Server] = []
    rows: list[Row] = []
    flames: dict[str, tuple[Path, Row]] = {}
    try:
        for target in targets:  # one at a time: starts apart
            servers.append(start(target))
            check_first(servers[-1], body, reference)
            driver.run(servers[-1], 16, duration=1)  # warm up
        for connections in CONCURRENCY:  # each round drives every target in turn
            for server in servers:
                rows.append(driver.run(server, connections))
                if py_spy and connections == CONCURRENCY[-1] and server.target.name in PROFILED:
                    output = args.profile / f"serving-{server.target.name}.svg"
                    flames[server.target.name] = (output, driver.profile(server, py_spy, output))
        bare = next(s for s in servers if s.target.name == "bare")
        batch = batch_run(driver, bare)
    finally:
        for server in servers:
            stop(server.process)
    return Results(reference, cold_starts, rows, batch, in_process_rows_per_s(reference), flames)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the src folder of another checkout (e.g. a git worktree of the code before a "
        "change): served too in the bare configuration, and measured in the same run, "
        "round by round",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder for py-spy flame graphs (serving-<target>.svg) of bare, default and "
        "governed at c=64, recorded in an extra run after the measured one",
    )
    args = parser.parse_args()
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
    py_spy = None
    if args.profile is not None:
        py_spy = BIN / "py-spy"
        if not py_spy.exists():
            sys.exit(f"--profile needs py-spy next to {sys.executable}: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, wrk, py_spy, Path(tmp))
    command = f"benchmarks/serving.py --duration {args.duration}"
    if args.baseline is not None:
        command += f" --baseline {args.baseline}"
    if args.profile is not None:
        command += f" --profile {args.profile}"
    print_report(results, command)
    if results.failed():
        sys.exit(1)


if __name__ == "__main__":
    main()
