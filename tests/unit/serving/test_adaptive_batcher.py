"""AdaptiveBatcher: right rows to the right caller, coalescing, limits, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from finmaas.errors import PredictorFailed, SchemaMismatch, Unavailable
from finmaas.serving.batching import AdaptiveBatcher


class Model:
    """Scores row sums; records every batch it is called with."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.batches.append(x.shape[0])
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and (x[:, 0] == self.fail_on).any():
            raise ValueError("boom\nsecond line")
        return x.sum(axis=1)


def rows(n: int, value: float) -> np.ndarray:
    return np.full((n, 3), value)


def test_every_caller_gets_its_own_rows_under_concurrency() -> None:
    model = Model(delay=0.001)
    batcher = AdaptiveBatcher(model, max_batch_rows=64)
    sizes = np.random.default_rng(0).integers(1, 20, 200)

    async def main() -> list[np.ndarray]:
        results = await asyncio.gather(
            *(batcher.submit(rows(int(n), float(i))) for i, n in enumerate(sizes))
        )
        await batcher.close()
        return results

    results = asyncio.run(main())
    for i, (n, result) in enumerate(zip(sizes, results, strict=True)):
        np.testing.assert_array_equal(result, np.full(n, 3.0 * i))
    assert len(model.batches) < len(sizes)  # requests shared model calls
    assert max(model.batches) <= 64
    assert sum(model.batches) == sizes.sum()
    assert batcher.stats.requests == 200
    assert batcher.stats.rows == sizes.sum()


def test_a_lone_request_does_not_wait_for_company() -> None:
    batcher = AdaptiveBatcher(Model(), max_wait=0.5)

    async def main() -> float:
        start = time.perf_counter()
        await batcher.submit(rows(1, 1.0))
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert asyncio.run(main()) < 0.1


def test_an_oversize_request_runs_alone() -> None:
    model = Model(delay=0.01)
    batcher = AdaptiveBatcher(model, max_batch_rows=8)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(rows(2, 1.0)))
        await asyncio.sleep(0)
        results = await asyncio.gather(
            batcher.submit(rows(3, 2.0)),
            batcher.submit(rows(20, 3.0)),
            batcher.submit(rows(4, 4.0)),
        )
        await first
        assert [r.shape[0] for r in results] == [3, 20, 4]
        await batcher.close()

    asyncio.run(main())
    assert model.batches[0] == 2
    assert 20 in model.batches
    assert all(size <= 8 for size in model.batches if size != 20)


def test_a_failure_fails_its_batch_only() -> None:
    model = Model(delay=0.005, fail_on=9.0)
    batcher = AdaptiveBatcher(model, max_batch_rows=100)

    async def main() -> tuple[object, ...]:
        blocker = asyncio.ensure_future(batcher.submit(rows(1, 0.0)))
        await asyncio.sleep(0)
        batch = await asyncio.gather(
            batcher.submit(rows(1, 9.0)), batcher.submit(rows(1, 1.0)), return_exceptions=True
        )
        after = await batcher.submit(rows(1, 2.0))
        await blocker
        await batcher.close()
        return (*batch, after)

    bad, neighbour, after = asyncio.run(main())
    assert isinstance(bad, PredictorFailed)
    assert str(bad) == "the model failed to predict: boom"
    assert neighbour is bad or str(neighbour) == str(bad)  # same call, same failure
    np.testing.assert_array_equal(after, [6.0])


def test_finmaas_errors_pass_through_unchanged() -> None:
    def predict(x: np.ndarray) -> np.ndarray:
        raise SchemaMismatch("expected 3 features per row, got 2")

    batcher = AdaptiveBatcher(predict)

    async def main() -> None:
        with pytest.raises(SchemaMismatch) as err:
            await batcher.submit(rows(1, 1.0))
        assert str(err.value) == "expected 3 features per row, got 2"
        await batcher.close()

    asyncio.run(main())


def test_a_full_queue_refuses_at_once() -> None:
    batcher = AdaptiveBatcher(Model(delay=0.05), max_queue_rows=10)

    async def main() -> None:
        running = asyncio.ensure_future(batcher.submit(rows(5, 1.0)))
        await asyncio.sleep(0.01)  # the first call is running; the queue is empty again
        queued = asyncio.ensure_future(batcher.submit(rows(8, 1.0)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as err:
            await batcher.submit(rows(4, 1.0))
        assert str(err.value) == "model queue is full (8 rows waiting); retry later"
        await asyncio.gather(running, queued)
        await batcher.close()

    asyncio.run(main())


def test_close_drains_then_refuses() -> None:
    model = Model(delay=0.01)
    batcher = AdaptiveBatcher(model)

    async def main() -> None:
        pending = [asyncio.ensure_future(batcher.submit(rows(1, float(i)))) for i in range(5)]
        await asyncio.sleep(0)
        await batcher.close()
        assert all(p.done() and not p.exception() for p in pending)
        with pytest.raises(Unavailable) as err:
            await batcher.submit(rows(1, 1.0))
        assert str(err.value) == "model is shutting down"

    asyncio.run(main())
    assert sum(model.batches) == 5


def test_a_cancelled_caller_does_not_break_the_others() -> None:
    model = Model(delay=0.02)
    batcher = AdaptiveBatcher(model)

    async def main() -> np.ndarray:
        first = asyncio.ensure_future(batcher.submit(rows(1, 1.0)))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(batcher.submit(rows(1, 2.0)))
        kept = asyncio.ensure_future(batcher.submit(rows(1, 3.0)))
        await asyncio.sleep(0)
        gone.cancel()
        result = await kept
        await first
        await batcher.close()
        return result

    np.testing.assert_array_equal(asyncio.run(main()), [9.0])
    assert sum(model.batches) == 2  # the cancelled request never reached the model


def test_multiclass_rows_scatter() -> None:
    batcher = AdaptiveBatcher(lambda x: np.repeat(x[:, :1], 3, axis=1), max_batch_rows=100)

    async def main() -> list[np.ndarray]:
        out = await asyncio.gather(batcher.submit(rows(2, 1.0)), batcher.submit(rows(3, 2.0)))
        await batcher.close()
        return out

    first, second = asyncio.run(main())
    assert first.shape == (2, 3)
    assert second.shape == (3, 3)
    assert (second == 2.0).all()
