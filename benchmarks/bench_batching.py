"""Micro-benchmark: what AdaptiveBatcher adds per request, against run_in_executor.

Run: ``.venv/bin/python benchmarks/bench_batching.py [--requests 20000]``.
A trivial model (``x[:, 0]`` on one 20-feature row) makes the model call almost
free, so the latency of ``submit`` → result is the batcher's own overhead: the
hop to a worker thread and back to the event loop. At concurrency 1 and 64, on
asyncio and uvloop, it times every request and prints the median and p99
latency, the wall time per request (1 / throughput) and the model calls made,
for three ways to call the model:

* ``batcher``: ``await AdaptiveBatcher(predict).submit(x)`` (one model thread);
* ``executor``: ``await loop.run_in_executor(pool, predict, x)`` per request,
  with a dedicated one-thread pool (the same thread budget as the batcher);
* ``executor x4``: the same with four threads;
* ``inline``: ``predict(x)`` on the event loop itself, the floor (never do this
  with a real model: it blocks the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from finmaas.serving.batching import AdaptiveBatcher

CONCURRENCY = (1, 64)


class Trivial:
    """``x[:, 0]``, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
        return x[:, 0]


async def drive(
    call: Callable[[np.ndarray], Awaitable[np.ndarray]], concurrency: int, requests: int
) -> tuple[list[float], float]:
    """``concurrency`` clients, each sending its share of ``requests`` one after another."""
    x = np.ones((1, 20))
    latencies: list[float] = []

    async def client(n: int) -> None:
        for _ in range(n):
            start = time.perf_counter()
            await call(x)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client(requests // concurrency) for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


async def warm_then_drive(
    call: Callable[[np.ndarray], Awaitable[np.ndarray]],
    model: Trivial,
    concurrency: int,
    requests: int,
) -> tuple[list[float], float]:
    await drive(call, concurrency, requests // 10)
    model.calls = 0
    return await drive(call, concurrency, requests)


async def measure(mode: str, concurrency: int, requests: int) -> tuple[list[float], float, int]:
    model = Trivial()
    if mode == "batcher":
        batcher = AdaptiveBatcher(model)
        latencies, wall = await warm_then_drive(batcher.submit, model, concurrency, requests)
        await batcher.close()
    elif mode == "inline":

        async def inline(x: np.ndarray) -> np.ndarray:
            return model(x)

        latencies, wall = await warm_then_drive(inline, model, concurrency, requests)
    else:
        loop = asyncio.get_running_loop()
        threads = 4 if mode == "executor x4" else 1
        with ThreadPoolExecutor(threads) as pool:

            async def call(x: np.ndarray) -> np.ndarray:
                return await loop.run_in_executor(pool, model, x)

            latencies, wall = await warm_then_drive(call, model, concurrency, requests)
    return latencies, wall, model.calls


def run_on(loop_name: str, requests: int) -> list[str]:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop_name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    lines = []
    for concurrency in CONCURRENCY:
        for mode in ("batcher", "executor", "executor x4", "inline"):
            with asyncio.Runner(loop_factory=factory) as runner:
                latencies, wall, calls = runner.run(measure(mode, concurrency, requests))
            n = len(latencies)
            median = statistics.median(latencies) * 1e6
            p99 = sorted(latencies)[int(0.99 * (n - 1))] * 1e6
            lines.append(
                f"| {loop_name} | {concurrency} | {mode} | {median:,.1f} | {p99:,.1f} "
                f"| {wall / n * 1e6:,.2f} | {n / calls:,.1f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per measurement")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{args.requests:,} requests of one 20-feature row per measurement, after a warm-up\n")
    print("| loop | concurrency | mode | median µs | p99 µs | wall µs/request | requests/call |")
    print("|---|---|---|---|---|---|---|")
    for loop_name in ("asyncio", "uvloop"):
        for line in run_on(loop_name, args.requests):
            print(line, flush=True)


if __name__ == "__main__":
    main()
