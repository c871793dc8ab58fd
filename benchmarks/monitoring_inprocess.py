"""What drift counting and the prediction log cost, in-process: CPU per request.

Run: ``.venv/bin/python benchmarks/monitoring_inprocess.py [--requests 8192] [--rounds 7]``.

The ASGI app is called directly (no socket, no HTTP parser, no load generator
on the same cores): ``--concurrency`` KServe V1 requests of one German Credit
applicant at a time, the quickstart's ``credit-risk@production``, one app per
configuration with its lifespan started. For each run the process CPU time
(every thread: the event loop, the model thread, the drift recorder and the
log writer) is divided by the requests; configurations are interleaved over
``--rounds`` rounds and the medians compared with drift off. The event loop's
own thread is reported beside it: one worker's throughput is bound by that
thread, while the model, drift and log threads can use another core; and the
time spent in garbage collections, whichever thread ran them. The same code is
measured throughout, so the differences are the features' own cost, which
the wrk benchmark (``benchmarks/monitoring.py``) cannot resolve on a noisy VM.
Metrics counting has no off switch and is in every configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from monitoring import logging_home, quickstart_home
from serving import PATH, applicant_body, print_header

from finmaas.app import FinmaasApp
from finmaas.config import Settings

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "metrics, drift off": ("home", {"count_drift": False}),
    "metrics + drift": ("home", {}),
    "+ prediction log 100% (Parquet)": ("home-logged", {}),
    "+ prediction log 100% (JSON Lines)": ("home-logged", {"prediction_log_format": "jsonl"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8192)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    body = applicant_body()
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    loop: dict[str, list[float]] = {name: [] for name in CONFIGS}
    collecting: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as temporary:
        tmp = Path(temporary)
        quickstart_home(tmp / "home")
        logging_home(tmp / "home", tmp / "home-logged")
        for _ in range(args.rounds):
            for name, (home, options) in CONFIGS.items():
                settings = Settings(
                    home=tmp / home, insecure_no_auth=True, access_log="off", **options
                )
                process, loop_only, gc_only = asyncio.run(
                    measure(settings, body, args.requests, args.concurrency)
                )
                cpu[name].append(process)
                loop[name].append(loop_only)
                collecting[name].append(gc_only)
                shutil.rmtree(tmp / home / "predictions", ignore_errors=True)
    print_header(
        f"benchmarks/monitoring_inprocess.py --requests {args.requests} "
        f"--concurrency {args.concurrency} --rounds {args.rounds}"
    )
    reference = statistics.median(cpu["metrics, drift off"])
    loop_reference = statistics.median(loop["metrics, drift off"])
    print(
        "\n| configuration | process CPU µs/request (median) | runs | vs drift off "
        "| event-loop thread µs/request | vs drift off | garbage collection µs/request |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, runs in cpu.items():
        median, loop_median = statistics.median(runs), statistics.median(loop[name])
        shown = ", ".join(f"{r:.1f}" for r in runs)
        print(
            f"| {name} | {median:.1f} | {shown} | {median / reference:.3f} "
            f"| {loop_median:.1f} | {loop_median / loop_reference:.3f} "
            f"| {statistics.median(collecting[name]):.2f} |"
        )


async def measure(
    settings: Settings, body: bytes, requests: int, concurrency: int
) -> tuple[float, float, float]:
    """µs per request, warm, including the flushes at shutdown: CPU of the process
    and of the event loop's thread, and time spent in garbage collections."""
    app = FinmaasApp(settings)
    lifespan = _Lifespan(app)
    collections = _Collections()
    await lifespan.start()
    try:
        await _drive(app, body, 512, concurrency)  # load the model, warm the caches
        gc.callbacks.append(collections)
        start, loop_start = time.process_time(), time.thread_time()
        await _drive(app, body, requests, concurrency)
    finally:
        await lifespan.stop()
        if collections in gc.callbacks:
            gc.callbacks.remove(collections)
    process, loop = time.process_time() - start, time.thread_time() - loop_start
    return process / requests * 1e6, loop / requests * 1e6, collections.seconds / requests * 1e6


class _Collections:
    """A ``gc.callbacks`` hook adding up the time of every collection."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


async def _drive(app: FinmaasApp, body: bytes, requests: int, concurrency: int) -> None:
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await _post(app, body)
            assert status == 200, status

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _post(app: FinmaasApp, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


class _Lifespan:
    def __init__(self, app: FinmaasApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        assert self.task is not None
        await self.task


if __name__ == "__main__":
    main()
