"""AdaptiveBatcher: each caller gets its own rows, coalescing, no idle delay, limits, failures."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from finmaas.errors import PredictorFailed, SchemaMismatch, Unavailable
from finmaas.serving.batching import CALLS_BEFORE_INLINE, AdaptiveBatcher

T = TypeVar("T")

LOOPS = [
    pytest.param(None, id="asyncio"),
    pytest.param(
        "uvloop",
        id="uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
]


def run(main: Callable[[], Awaitable[T]], loop: str | None = None) -> T:
    """Run ``main()`` on a fresh asyncio (or uvloop) event loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop

    async def wrapper() -> T:
        return await main()

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(wrapper())


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def score(x: np.ndarray) -> np.ndarray:
    """Element-wise, so a row's score is bit-identical alone or in any batch."""
    scores: np.ndarray = x[:, 0] * 1000.0 + x[:, 1] + x[:, 2] * 0.5
    return scores


class Model:
    """``score`` (or ``outputs`` columns of it) that records its batches, and can block or fail.

    Clearing ``gate`` holds every call until it is set again; a row whose
    first feature is negative makes the call raise.
    """

    def __init__(self, *, delay: float = 0.0, outputs: int = 0) -> None:
        self.delay = delay
        self.outputs = outputs
        self.batches: list[int] = []
        self.threads: set[threading.Thread] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.batches.append(x.shape[0])
            self.threads.add(threading.current_thread())
        assert self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        if (x[:, 0] < 0).any():
            raise ValueError("boom\nsecond line")
        return self.direct(x)

    def direct(self, x: np.ndarray) -> np.ndarray:
        s = score(x)
        if not self.outputs:
            return s
        return np.column_stack([s * (k + 1) for k in range(self.outputs)])


def request(ident: int, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    rng = rng or np.random.default_rng(abs(ident))
    return np.column_stack([np.full(n, float(ident)), np.arange(n, dtype=float), rng.random(n)])


@pytest.mark.parametrize("loop", LOOPS)
def test_every_caller_gets_exactly_its_rows_under_concurrency(loop: str | None) -> None:
    model = Model(delay=0.001)
    batcher = AdaptiveBatcher(model, max_batch_rows=64)
    rng = np.random.default_rng(0)
    inputs = [request(i, int(n), rng) for i, n in enumerate(rng.integers(1, 20, 200))]

    async def main() -> list[np.ndarray]:
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.close()
        return list(results)

    results = run(main, loop)
    for x, result in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(result, model.direct(x))
    total = sum(x.shape[0] for x in inputs)
    assert len(model.batches) < len(inputs)  # requests shared model calls
    assert max(model.batches) <= 64
    assert sum(model.batches) == total
    stats = batcher.stats
    assert (stats.requests, stats.batches, stats.rows) == (200, len(model.batches), total)
    assert stats.mean_batch_rows == total / len(model.batches)
    assert (stats.queued_rows, stats.running, stats.failed_batches) == (0, 0, 0)


def test_multiclass_scores_are_scattered_by_row() -> None:
    model = Model(delay=0.001, outputs=3)
    batcher = AdaptiveBatcher(model, max_batch_rows=32)
    rng = np.random.default_rng(1)
    inputs = [request(i, int(n), rng) for i, n in enumerate(rng.integers(1, 9, 40))]

    async def main() -> list[np.ndarray]:
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.close()
        return list(results)

    for x, result in zip(inputs, run(main), strict=True):
        assert result.shape == (x.shape[0], 3)
        np.testing.assert_array_equal(result, model.direct(x))
    assert len(model.batches) < len(inputs)


@pytest.mark.parametrize("threads", [1, 4])
def test_a_lone_request_does_not_wait_for_company(threads: int) -> None:
    # The clock stands still: a request that waited for company would never be scored.
    batcher = AdaptiveBatcher(Model(), max_wait=0.5, threads=threads, clock=lambda: 0.0)

    async def main() -> None:
        for i in range(5):  # one after another: the model is idle each time
            await asyncio.wait_for(batcher.submit(request(i, 1)), timeout=30)
        await batcher.close()

    run(main)


def test_batches_hold_whole_requests_up_to_max_batch_rows() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, max_batch_rows=16)
    rng = np.random.default_rng(2)
    inputs = [request(i, int(n), rng) for i, n in enumerate(rng.integers(1, 11, 60))]

    async def main() -> list[np.ndarray]:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(999, 1)))
        await until(lambda: len(model.batches) == 1)
        pending = [asyncio.ensure_future(batcher.submit(x)) for x in inputs]
        await until(lambda: batcher.stats.queued_rows == sum(x.shape[0] for x in inputs))
        model.gate.set()
        results = await asyncio.gather(*pending)
        await blocker
        await batcher.close()
        return list(results)

    for x, result in zip(inputs, run(main), strict=True):
        np.testing.assert_array_equal(result, model.direct(x))
    assert model.batches[0] == 1
    assert all(size <= 16 for size in model.batches)
    assert sum(model.batches[1:]) == sum(x.shape[0] for x in inputs)
    assert len(model.batches) - 1 < len(inputs)


def test_an_oversize_request_runs_alone_and_order_is_kept() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, max_batch_rows=8)
    inputs = [request(1, 3), request(2, 20), request(3, 4), request(4, 2)]

    async def main() -> list[np.ndarray]:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await until(lambda: len(model.batches) == 1)
        pending = [asyncio.ensure_future(batcher.submit(x)) for x in inputs]
        await asyncio.sleep(0)
        model.gate.set()
        results = await asyncio.gather(*pending)
        await blocker
        await batcher.close()
        return list(results)

    for x, result in zip(inputs, run(main), strict=True):
        np.testing.assert_array_equal(result, model.direct(x))
    assert model.batches == [1, 3, 20, 6]


def test_a_failing_call_fails_its_whole_batch_and_the_batcher_recovers() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model)

    async def main() -> tuple[list[Any], np.ndarray]:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await until(lambda: len(model.batches) == 1)
        batch = asyncio.gather(
            batcher.submit(request(-1, 2)), batcher.submit(request(5, 1)), return_exceptions=True
        )
        await asyncio.sleep(0)
        model.gate.set()
        outcomes = await batch
        await blocker
        after = await batcher.submit(request(6, 2))
        await batcher.close()
        return list(outcomes), after

    (bad, neighbour), after = run(main)
    assert isinstance(bad, PredictorFailed)
    assert str(bad) == "the model failed to predict: boom"
    assert isinstance(bad.__cause__, ValueError)
    assert neighbour is bad  # one call, one failure, shared by its batch
    np.testing.assert_array_equal(after, score(request(6, 2)))
    assert model.batches == [1, 3, 2]
    assert batcher.stats.failed_batches == 1


def test_served_hears_each_successful_call_once_with_its_rows_and_scores() -> None:
    model = Model()
    heard: list[tuple[np.ndarray, np.ndarray]] = []
    batcher = AdaptiveBatcher(model, served=lambda x, s: heard.append((x, s)))
    inputs = [request(1, 2), request(2, 3), request(-1, 1), request(4, 1)]

    async def main() -> None:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await until(lambda: len(model.batches) == 1)
        joined = asyncio.gather(*(batcher.submit(x) for x in inputs[:2]))
        await asyncio.sleep(0)
        model.gate.set()
        await joined
        await blocker
        with pytest.raises(PredictorFailed):
            await batcher.submit(inputs[2])  # a failed call is not counted
        await batcher.submit(inputs[3])
        await batcher.close()

    run(main)
    assert model.batches == [1, 5, 1, 1]
    assert [len(x) for x, _ in heard] == [1, 5, 1]  # once per call, not per request
    joined_rows = np.concatenate(inputs[:2])
    np.testing.assert_array_equal(heard[1][0], joined_rows)
    np.testing.assert_array_equal(heard[1][1], score(joined_rows))
    np.testing.assert_array_equal(heard[2][0], inputs[3])


def test_finmaas_errors_reach_every_caller_unchanged() -> None:
    error = SchemaMismatch("expected 3 features per row, got 2")

    def predict(x: np.ndarray) -> np.ndarray:
        raise error

    batcher = AdaptiveBatcher(predict)

    async def main() -> list[Any]:
        outcomes = await asyncio.gather(
            *(batcher.submit(request(i, 1)) for i in range(3)), return_exceptions=True
        )
        await batcher.close()
        return list(outcomes)

    assert all(outcome is error for outcome in run(main))


def test_scores_with_the_wrong_number_of_rows_fail_the_batch() -> None:
    batcher = AdaptiveBatcher(lambda x: x[:-1, 0])

    async def main() -> None:
        with pytest.raises(PredictorFailed) as err:
            await batcher.submit(request(1, 4))
        assert str(err.value) == (
            "the model failed to predict: it returned 3 rows of scores for 4 rows"
        )
        await batcher.close()

    run(main)


def test_requests_of_another_width_are_not_joined_to_a_batch() -> None:
    widths: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        widths.append(x.shape[1])
        if x.shape[1] != 3:
            raise SchemaMismatch(f"expected 3 features per row, got {x.shape[1]}")
        return score(x)

    batcher = AdaptiveBatcher(predict, max_batch_rows=100)

    async def main() -> list[Any]:
        outcomes = await asyncio.gather(
            batcher.submit(request(0, 1)),
            batcher.submit(request(1, 2)),
            batcher.submit(np.zeros((2, 2))),
            batcher.submit(request(3, 2)),
            return_exceptions=True,
        )
        await batcher.close()
        return list(outcomes)

    first, second, wrong, fourth = run(main)
    np.testing.assert_array_equal(first, score(request(0, 1)))
    np.testing.assert_array_equal(second, score(request(1, 2)))
    np.testing.assert_array_equal(fourth, score(request(3, 2)))
    assert str(wrong) == "expected 3 features per row, got 2"
    assert widths == [3, 3, 2, 3]


def test_a_full_queue_refuses_at_once_with_the_rows_waiting() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, max_queue_rows=10)

    async def main() -> None:
        model.gate.clear()
        running = asyncio.ensure_future(batcher.submit(request(0, 5)))  # straight to the model
        await until(lambda: len(model.batches) == 1)
        queued = asyncio.ensure_future(batcher.submit(request(1, 8)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as err:
            await batcher.submit(request(2, 4))
        assert str(err.value) == "model queue is full (8 rows waiting); retry later"
        last = asyncio.ensure_future(batcher.submit(request(3, 2)))  # exactly at the limit
        await asyncio.sleep(0)
        assert batcher.stats.queued_rows == 10
        model.gate.set()
        await asyncio.gather(running, queued, last)
        await batcher.close()

    run(main)
    assert model.batches == [5, 10]


def test_close_finishes_everything_queued_then_refuses() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model)

    async def main() -> None:
        model.gate.clear()
        pending = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in range(5)]
        await until(lambda: len(model.batches) == 1)
        closing = asyncio.ensure_future(batcher.close())
        also_closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.01)
        assert not closing.done()
        with pytest.raises(Unavailable) as err:
            await batcher.submit(request(9, 1))
        assert str(err.value) == "model is shutting down"
        model.gate.set()
        await asyncio.gather(closing, also_closing)
        for i, p in enumerate(pending):
            np.testing.assert_array_equal(p.result(), score(request(i, 1)))
        with pytest.raises(Unavailable) as err:
            await batcher.submit(request(9, 1))
        assert str(err.value) == "model is shutting down"
        await batcher.close()  # again: nothing to do

    run(main)
    assert model.batches == [1, 4]
    assert model.threads
    assert not any(thread.is_alive() for thread in model.threads)  # close stopped them


def test_a_cancelled_caller_does_not_break_the_others() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model)

    async def main() -> None:
        model.gate.clear()
        first = asyncio.ensure_future(batcher.submit(request(1, 1)))
        await until(lambda: len(model.batches) == 1)
        gone = asyncio.ensure_future(batcher.submit(request(2, 2)))
        kept = asyncio.ensure_future(batcher.submit(request(3, 1)))
        await asyncio.sleep(0)
        assert batcher.stats.queued_rows == 3
        gone.cancel()
        first.cancel()  # its call is already running: the result is dropped
        await asyncio.sleep(0)
        assert batcher.stats.queued_rows == 1  # the queue forgets a cancelled request
        model.gate.set()
        np.testing.assert_array_equal(await kept, score(request(3, 1)))
        assert gone.cancelled()
        assert first.cancelled()
        np.testing.assert_array_equal(await batcher.submit(request(4, 2)), score(request(4, 2)))
        await batcher.close()

    run(main)
    assert model.batches == [1, 1, 2]  # the cancelled request never reached the model


def test_with_threads_calls_overlap() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, threads=2, max_wait=0)

    async def main() -> None:
        model.gate.clear()
        pending = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in range(2)]
        await until(lambda: len(model.batches) == 2)
        assert batcher.stats.running == 2
        model.gate.set()
        await asyncio.gather(*pending)
        await batcher.close()

    run(main)


def test_with_threads_a_free_thread_tops_up_for_at_most_max_wait() -> None:
    now = [0.0]
    model = Model()
    batcher = AdaptiveBatcher(
        model, threads=3, max_wait=0.2, max_batch_rows=8, clock=lambda: now[0]
    )

    async def main() -> None:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(0, 1)))  # idle: goes at once
        await until(lambda: len(model.batches) == 1)
        small = [asyncio.ensure_future(batcher.submit(request(i, 1))) for i in (1, 2)]
        await asyncio.sleep(0.01)
        assert model.batches == [1]  # a thread is free, but it waits for company
        now[0] += 0.19
        await asyncio.sleep(0.01)
        assert model.batches == [1]  # still within max_wait
        now[0] += 0.01
        await until(lambda: len(model.batches) == 2)
        assert model.batches == [1, 2]
        full = [asyncio.ensure_future(batcher.submit(request(i, 4))) for i in (3, 4)]
        await until(lambda: len(model.batches) == 3)  # a full batch goes, the clock still
        assert model.batches == [1, 2, 8]
        model.gate.set()
        await asyncio.gather(blocker, *small, *full)
        await batcher.close()

    run(main)


def test_max_wait_is_read_from_the_injected_clock() -> None:
    now = [0.0]
    model = Model()
    batcher = AdaptiveBatcher(model, threads=2, max_wait=0.005, clock=lambda: now[0])

    async def main() -> None:
        model.gate.clear()
        blocker = asyncio.ensure_future(batcher.submit(request(0, 1)))
        await until(lambda: len(model.batches) == 1)
        waiting = asyncio.ensure_future(batcher.submit(request(1, 1)))
        await asyncio.sleep(0.05)  # ten times max_wait of real time, none on the clock
        assert model.batches == [1]
        now[0] += 0.005
        await until(lambda: len(model.batches) == 2)
        model.gate.set()
        await asyncio.gather(blocker, waiting)
        await batcher.close()

    run(main)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_batch_rows", 0, "max_batch_rows must be ≥ 1, got 0"),
        ("max_wait", -1.0, "max_wait must be ≥ 0, got -1.0"),
        ("max_queue_rows", -1, "max_queue_rows must be ≥ 0, got -1"),
        ("threads", 0, "threads must be ≥ 1, got 0"),
        ("inline_below", -0.001, "inline_below must be ≥ 0, got -0.001"),
    ],
)
def test_options_are_checked(option: str, value: float, message: str) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AdaptiveBatcher(score, **options)


async def until_inline(batcher: AdaptiveBatcher) -> None:
    """The calls a fast model makes on its thread before it is scored on the loop."""
    for i in range(CALLS_BEFORE_INLINE):
        await batcher.submit(request(i, 1))
    assert batcher.inline


@pytest.mark.parametrize("loop", LOOPS)
def test_a_fast_model_is_scored_on_the_loop_after_its_first_calls(loop: str | None) -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, max_batch_rows=8, inline_below=1.0)

    async def main() -> None:
        await until_inline(batcher)
        assert threading.main_thread() not in model.threads
        model.threads.clear()
        # the requests ready in one turn of the loop: the first runs at once, the rest
        # queue behind it and share the next call, on the loop as well
        results = await asyncio.gather(*(batcher.submit(request(i, 2)) for i in range(5)))
        for i, result in enumerate(results):
            np.testing.assert_array_equal(result, score(request(i, 2)))
        assert model.threads == {threading.main_thread()}
        model.threads.clear()
        await batcher.submit(request(9, 9))  # larger than a batch: to a thread
        assert threading.main_thread() not in model.threads
        await batcher.close()

    run(main, loop)
    assert model.batches[CALLS_BEFORE_INLINE:] == [2, 8, 9]
    assert (batcher.stats.running, batcher.stats.queued_rows) == (0, 0)


def test_a_model_that_slows_down_goes_back_to_the_threads() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, inline_below=0.005)

    async def main() -> None:
        await until_inline(batcher)
        model.delay = 0.05  # ten times the bound: the moving average passes it at once
        await batcher.submit(request(1, 1))
        assert not batcher.inline
        model.threads.clear()
        await batcher.submit(request(2, 1))
        assert threading.main_thread() not in model.threads
        await batcher.close()

    run(main)


def test_an_inline_failure_fails_its_batch_and_the_batcher_goes_on() -> None:
    model = Model()
    batcher = AdaptiveBatcher(model, inline_below=1.0)

    async def main() -> None:
        await until_inline(batcher)
        with pytest.raises(PredictorFailed, match=r"^the model failed to predict: boom$"):
            await batcher.submit(request(-1, 1))
        np.testing.assert_array_equal(await batcher.submit(request(3, 1)), score(request(3, 1)))
        await batcher.close()

    run(main)
    assert batcher.stats.failed_batches == 1
