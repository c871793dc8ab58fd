"""Soak test: does one worker's resident memory level off under steady governed load?

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 30] [--connections 64]``.

Not a CI test. On a temporary home it publishes the quickstart models, makes
``credit-risk`` a decision model that logs 10% of its rows, issues a consumer
key with per-minute limits and a monthly quota (set too high to refuse), and
starts a real ``finmaas serve --workers 1`` on 127.0.0.1 with its defaults
(access log on standard output, here discarded). wrk then sends one German
Credit applicant per KServe V1 request over ``--connections`` connections for
``--minutes``, each request with its own ``X-Subject-ID`` (so per-subject state
would show). Every ``--every`` seconds the script reads the server's
``/proc/<pid>/status`` (resident memory, split into anonymous and file-backed),
the sizes of the registry database, its WAL and the prediction log, and the
decision and prediction-log backlogs from ``/metrics`` (an auditor key).

The verdict: the resident memory at the end of ``--warmup-minutes`` is the
baseline; the run passes when no later sample is more than ``--level`` per cent
(5) above it. The server is stopped on any exit (SIGTERM, Ctrl-C, an error),
and wrk with it.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
import pyarrow.parquet as pq
from serving import (
    PATH,
    applicant_body,
    ensure_wrk,
    free_port,
    print_header,
    start_finmaas,
    stop,
    wait_ready,
)

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.quickstart import run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.records import ModelUpdate
from finmaas.security.key_secrets import issue_key
from finmaas.security.policy import parse_grant

HIGH = 10**9
TENANT = "default"
_BACKLOG = re.compile(rb"^(finmaas_decision_backlog|finmaas_prediction_log_backlog) (\S+)$", re.M)
_SERVED = re.compile(rb'^finmaas_requests_total\{[^}]*status="200"[^}]*\} (\S+)$', re.M)


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    anon_mb: float
    file_mb: float
    database_mb: float
    wal_mb: float
    log_mb: float
    decision_backlog: float
    log_backlog: float
    served: float


def governed_home(home: Path) -> tuple[str, str]:
    """The quickstart home with ``credit-risk`` governed; a consumer and an auditor key."""
    settings = Settings(home=home)
    registry = Registry.open(settings)
    run_quickstart(
        registry, LocalArtifactStore(settings.resolved_artifacts_dir), actor=Actor("bench")
    )
    registry.update_model(
        "credit-risk", ModelUpdate(decisions=True, log_sample_rate=0.1), actor=Actor("bench")
    )
    keys = KeyStore(registry)
    consumer = issue_key(
        keys,
        name="soak",
        role="consumer",
        actor="local:bench",
        tenant=TENANT,
        grants=(parse_grant("credit-*:predict"),),
        requests_per_minute=HIGH,
        rows_per_minute=HIGH,
        monthly_quota=HIGH,
    ).token
    auditor = issue_key(
        keys, name="soak-auditor", role="auditor", actor="local:bench", tenant=TENANT
    ).token
    registry.close()
    return consumer, auditor


def wrk_script(folder: Path, body: bytes, token: str) -> Path:
    """A wrk script: the body, the key, and a new ``X-Subject-ID`` on every request."""
    script = folder / "soak.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        "local n = 0\n"
        "local thread_tag = tostring(math.random(1, 1000000000))\n"
        "function request()\n"
        "  n = n + 1\n"
        '  wrk.headers["X-Subject-ID"] = "applicant-" .. thread_tag .. "-" .. n\n'
        "  return wrk.format()\n"
        "end\n"
    )
    return script


def resident(pid: int) -> tuple[float, float, float]:
    """VmRSS, RssAnon and RssFile + RssShmem of a process, in MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["RssAnon"], fields["RssFile"] + fields["RssShmem"]


def megabytes(*paths: Path) -> float:
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.exists():
            total += path.stat().st_size
    return total / 1e6


def scrape(url: str, auditor: str) -> tuple[float, float, float]:
    """Decision backlog, prediction-log backlog and requests answered 200, from /metrics."""
    try:
        text = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {auditor}"}, timeout=10
        ).content
    except httpx.HTTPError:
        return float("nan"), float("nan"), float("nan")
    backlogs = {name: float(value) for name, value in _BACKLOG.findall(text)}
    served = sum(float(value) for value in _SERVED.findall(text))
    return (
        backlogs.get(b"finmaas_decision_backlog", float("nan")),
        backlogs.get(b"finmaas_prediction_log_backlog", float("nan")),
        served,
    )


def sample(pid: int, home: Path, url: str, auditor: str, seconds: float) -> Sample:
    rss, anon, file_backed = resident(pid)
    decisions, logged, served = scrape(url, auditor)
    return Sample(
        seconds,
        rss,
        anon,
        file_backed,
        megabytes(home / "registry.db"),
        megabytes(home / "registry.db-wal"),
        megabytes(home / "predictions"),
        decisions,
        logged,
        served,
    )


@dataclass
class Stored:
    """What the soak left on disk once the server stopped (every file closed)."""

    decisions: int
    database_mb: float
    wal_mb: float
    logged_rows: int
    log_mb: float


def stored_volumes(home: Path) -> Stored:
    with sqlite3.connect(home / "registry.db") as db:
        decisions = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
    files = list((home / "predictions").rglob("*.parquet"))
    return Stored(
        decisions,
        megabytes(home / "registry.db"),
        megabytes(home / "registry.db-wal"),
        sum(pq.ParquetFile(path).metadata.num_rows for path in files),
        megabytes(*files),
    )


def verdict(samples: list[Sample], warmup: float, level: float) -> tuple[Sample, float, bool]:
    """The baseline sample (first at or after the warm-up), the largest growth over it
    in per cent, and whether that stays within ``level``."""
    baseline = next(s for s in samples if s.seconds >= warmup)
    later = [s for s in samples if s.seconds > baseline.seconds] or [baseline]
    growth = (max(s.rss_mb for s in later) / baseline.rss_mb - 1) * 100
    return baseline, growth, growth <= level


def slope(samples: list[Sample]) -> float:
    """Least-squares RSS growth in MB per minute (0 with fewer than two samples)."""
    if len(samples) < 2:
        return 0.0
    minutes = [s.seconds / 60 for s in samples]
    return statistics.linear_regression(minutes, [s.rss_mb for s in samples]).slope


def _stop_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that reap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup-minutes", type=float, default=5.0)
    parser.add_argument("--level", type=float, default=5.0, help="allowed growth, per cent")
    parser.add_argument("--curve", type=Path, default=None, help="write the samples as JSON")
    parser.add_argument(
        "--smaps",
        type=Path,
        default=None,
        help="a folder for copies of the server's /proc/<pid>/smaps at the end of warm-up "
        "and at the end, to see which mappings grew",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_signal)
    signal.signal(signal.SIGHUP, _stop_signal)
    wrk = ensure_wrk()
    body = applicant_body()
    duration = round(args.minutes * 60)
    with tempfile.TemporaryDirectory() as temporary:
        tmp = Path(temporary)
        home = tmp / "home"
        consumer, auditor = governed_home(home)
        script = wrk_script(tmp, body, consumer)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_finmaas(home, port, "--workers", "1", "--preload")
        load: subprocess.Popen[str] | None = None
        samples: list[Sample] = []
        try:
            wait_ready(f"{url}/v2/health/live", server)
            command = [wrk, "-t2", f"-c{args.connections}", f"-d{duration}s", "--latency"]
            load = subprocess.Popen(
                [*command, "-s", str(script), url + PATH],
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.monotonic()
            while load.poll() is None:
                time.sleep(min(args.every, max(0.0, duration + 30 - time.monotonic() + started)))
                if load.poll() is not None:
                    break
                point = sample(server.pid, home, url, auditor, time.monotonic() - started)
                samples.append(point)
                if args.smaps is not None and point.seconds >= args.warmup_minutes * 60:
                    args.smaps.mkdir(parents=True, exist_ok=True)
                    warm = args.smaps / "smaps.warm"
                    target = args.smaps / ("smaps.end" if warm.exists() else "smaps.warm")
                    target.write_bytes(Path(f"/proc/{server.pid}/smaps").read_bytes())
                print(
                    f"{point.seconds:7.0f} s  RSS {point.rss_mb:6.1f} MB (anon "
                    f"{point.anon_mb:.1f}, file {point.file_mb:.1f})  db {point.database_mb:.0f}"
                    f" MB, WAL {point.wal_mb:.0f} MB, log {point.log_mb:.1f} MB  backlogs "
                    f"{point.decision_backlog:.0f}/{point.log_backlog:.0f}",
                    file=sys.stderr,
                    flush=True,
                )
            report = load.communicate()[0]
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode} during the soak")
        finally:
            if load is not None and load.poll() is None:
                load.kill()
                load.wait()
            stop(server)
        stored = stored_volumes(home)
        if args.curve is not None:
            args.curve.write_text(json.dumps([s.__dict__ for s in samples], indent=1))
        print_report(args, report, samples, stored)


def print_report(
    args: argparse.Namespace, report: str, samples: list[Sample], stored: Stored
) -> None:
    requests = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s*99%\s+(\S+)", report, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    socket_errors = re.search(r"Socket errors: .*", report)
    baseline, growth, passed = verdict(samples, args.warmup_minutes * 60, args.level)
    after = [s for s in samples if s.seconds >= baseline.seconds]
    half = [s for s in after if s.seconds >= (baseline.seconds + after[-1].seconds) / 2]
    print_header(
        f"benchmarks/soak.py --minutes {args.minutes:g} --connections {args.connections} "
        f"--every {args.every:g} --warmup-minutes {args.warmup_minutes:g}"
    )
    print(
        "- 1 worker, credit-risk@production as a decision model logging 10% of rows, "
        "a consumer key with limits and a quota, one applicant per KServe V1 request, "
        "a new X-Subject-ID per request\n"
        f"- requests: {requests:,} ({rate:,.0f}/s, p99 {p99.group(1) if p99 else '?'}), "
        f"non-2xx {errors.group(1) if errors else 0}"
        f"{', ' + socket_errors.group(0) if socket_errors else ''}\n"
        f"- RSS at the first sample ({samples[0].seconds:.0f} s): {samples[0].rss_mb:.1f} MB; "
        f"at the end of warm-up ({baseline.seconds:.0f} s): {baseline.rss_mb:.1f} MB; "
        f"highest after: {max(s.rss_mb for s in after):.1f} MB; "
        f"last: {samples[-1].rss_mb:.1f} MB\n"
        f"- growth after warm-up: {growth:+.1f}% (slope {slope(after):+.2f} MB/min over the "
        f"rest, {slope(half):+.2f} MB/min over its second half) → "
        f"**{'PASS' if passed else 'FAIL'}** against {args.level:g}%\n"
        f"- largest backlogs seen: decisions {max(s.decision_backlog for s in samples):.0f}, "
        f"prediction log {max(s.log_backlog for s in samples):.0f}\n"
        f"- stored once stopped: {stored.decisions:,} decision records in a "
        f"{stored.database_mb:,.0f} MB database "
        f"({stored.database_mb * 1e6 / max(1, stored.decisions):.0f} bytes each), WAL "
        f"{stored.wal_mb:.0f} MB; {stored.logged_rows:,} prediction-log rows in "
        f"{stored.log_mb:.1f} MB of Parquet "
        f"({stored.log_mb * 1e6 / max(1, stored.logged_rows):.0f} bytes each)\n"
    )
    print("| minute | RSS MB | anonymous MB | file-backed MB | database MB | WAL MB |")
    print("|---|---|---|---|---|---|")
    step = max(1, round(60 / args.every))
    for point in samples[step - 1 :: step]:
        print(
            f"| {point.seconds / 60:.0f} | {point.rss_mb:.1f} | {point.anon_mb:.1f} "
            f"| {point.file_mb:.1f} | {point.database_mb:.0f} | {point.wal_mb:.0f} |"
        )


if __name__ == "__main__":
    main()
