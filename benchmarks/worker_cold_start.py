"""Cold start of a replaced ``finmaas serve`` worker, idle and with every core busy.

Starts ``finmaas serve --workers 2`` (lazy loading, so a worker's start is its
imports, the app and the lifespan: registry, key cache, pool), then, ``--rounds``
times: SIGKILLs one worker, sees the supervisor spawn its replacement (the new
child pid in /proc) and polls fresh connections until a response carries the
replacement's request-id prefix (one per worker process). Reported per round:
spawn → first answer (the worker's cold start) and kill → first answer (plus
the supervisor's detection, up to its 0.5 s loop), and how many replacements
were spawned (more than one means the supervisor killed a starting worker).

The worker's CPU time at its first answer (user + system, from /proc) is
reported too: it is the work a start costs, which the wall time divides among
whatever else runs on the machine (shared machines: note the load average).

Load: ``--busy N`` processes spinning in pure Python for at most ``--seconds``
each, started before and killed after each round (so N = 2 on a 2-core
machine keeps both cores busy, N = 4 oversubscribes them twice).

    python benchmarks/worker_cold_start.py --rounds 5 --busy 0
    python benchmarks/worker_cold_start.py --rounds 5 --busy 2

On a machine shared with other work, ``nice -n -10 python benchmarks/…`` (as
root) runs everything here (server, busy processes, probe) ahead of the rest,
so the rounds measure against our own load only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BUSY = "import time, sys\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_pids(supervisor: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def answering(url: str) -> str | None:
    try:
        response = httpx.get(f"{url}/v2/health/live", timeout=2)
    except httpx.TransportError:
        return None
    return response.headers["x-request-id"][:8] if response.status_code == 200 else None


def prefixes(url: str, count: int, timeout: float = 30) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        prefix = answering(url)
        if prefix:
            seen.add(prefix)
    return seen


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(url: str, supervisor: int, timeout: float) -> tuple[float, float, int, float]:
    before = worker_pids(supervisor)
    serving = prefixes(url, len(before))
    victim = min(before)
    killed = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    spawned_at: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.perf_counter()
        for pid in worker_pids(supervisor) - before:
            spawned_at.setdefault(pid, now)
        if spawned_at:
            prefix = answering(url)
            if prefix and prefix not in serving:
                answered = time.perf_counter()
                newest = max(spawned_at, key=spawned_at.__getitem__)
                cpu = cpu_seconds(newest)
                return answered - spawned_at[newest], answered - killed, len(spawned_at), cpu
        else:
            time.sleep(0.002)
    raise RuntimeError(f"no replacement answered in {timeout} s; spawned: {sorted(spawned_at)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="busy processes during each round")
    parser.add_argument("--seconds", type=float, default=20, help="longest life of a busy process")
    parser.add_argument("--home", type=Path, default=None, help="default: a fresh empty home")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="coldstart-")) / "home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
    finmaas = str(Path(sys.executable).with_name("finmaas"))
    server = subprocess.Popen(
        [
            finmaas,
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--insecure-no-auth",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    rows: list[tuple[float, float, int, float]] = []
    load_before = Path("/proc/loadavg").read_text().split()[0]
    try:
        deadline = time.monotonic() + 60
        while len(prefixes(url, 2, timeout=1)) < 2:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("server did not start")
        for _ in range(args.rounds):
            busy = [
                subprocess.Popen(
                    [sys.executable, "-c", BUSY, str(args.seconds)],
                )
                for _ in range(args.busy)
            ]
            try:
                time.sleep(0.5 if busy else 0)
                rows.append(one_round(url, server.pid, timeout=args.seconds - 1))
            finally:
                for process in busy:
                    process.kill()
                    process.wait()
            time.sleep(1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    for cold, total, spawned, cpu in rows:
        print(
            f"spawn→answer {cold:6.3f} s   kill→answer {total:6.3f} s   "
            f"worker CPU to answer {cpu:5.2f} s   workers spawned {spawned}"
        )
    colds = [row[0] for row in rows]
    print(
        f"busy={args.busy} nice={os.nice(0)} cpus={os.cpu_count()} rounds={len(rows)}: spawn→answer median "
        f"{statistics.median(colds):.3f} s, max {max(colds):.3f} s; kill→answer median "
        f"{statistics.median(row[1] for row in rows):.3f} s; worker CPU median "
        f"{statistics.median(row[3] for row in rows):.2f} s; load average before "
        f"{load_before}; most spawned in a round {max(r[2] for r in rows)}"
    )


if __name__ == "__main__":
    main()
