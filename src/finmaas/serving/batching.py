"""AdaptiveBatcher: concurrent requests for one model share one model call.

Policy: a request is dispatched at once when a model thread is free, so a lone
request at low load never waits. While every model thread is busy, arriving
requests queue; when a thread frees up, it takes everything queued (whole
requests, up to ``max_batch_rows`` rows) as one batch. A request therefore
waits at most for the calls already running before its own starts. With more
than one model thread, a free thread waits up to ``max_wait`` for a batch to
fill while another call is running, trading a bounded delay for fewer calls.

The model call runs in a worker thread the batcher owns (ONNX Runtime,
LightGBM and XGBoost release the GIL). Inputs are joined with one
``np.concatenate`` and results handed back by slicing. A failing call fails
every request of its batch and nothing else; a full queue refuses at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from finmaas.errors import FinmaasError, PredictorFailed, Unavailable

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class BatcherStats:
    batches: int = 0
    rows: int = 0
    requests: int = 0
    queued_rows: int = 0

    @property
    def mean_batch_rows(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


@dataclass
class _Pending:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]


class AdaptiveBatcher:
    """Batches ``predict`` calls of one loaded model; see the module docstring.

    Parameters:
        predict: the model's ``Predictor.predict``; thread-safe.
        max_batch_rows: most rows in one call (a larger request runs alone).
        max_wait: seconds a free thread may wait for a batch to fill while
            another call runs (only with ``threads > 1``).
        max_queue_rows: rows that may wait; beyond that ``submit`` refuses.
        threads: model calls that may run at the same time.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_rows: int = 64,
        max_wait: float = 0.0005,
        max_queue_rows: int = 16_384,
        threads: int = 1,
    ) -> None:
        self.predict = predict
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.max_queue_rows = max_queue_rows
        self.threads = threads
        self.stats = BatcherStats()
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._closing = False
        self._idle: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Score ``x`` (rows of one request) as part of a batch; return its rows' scores."""
        if self._closing:
            raise Unavailable("model is shutting down")
        rows = x.shape[0]
        if self.stats.queued_rows + rows > self.max_queue_rows and self._queue:
            raise Unavailable(
                f"model queue is full ({self.stats.queued_rows} rows waiting); retry later"
            )
        loop = asyncio.get_running_loop()
        pending = _Pending(x, loop.create_future())
        self._queue.append(pending)
        self.stats.queued_rows += rows
        self.stats.requests += 1
        self._dispatch(loop)
        return await pending.future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._running < self.threads:
            if self._running and self.max_wait > 0 and self._queued_rows_below_batch():
                loop.call_later(self.max_wait, self._dispatch, loop)
                return
            batch = self._take()
            if batch:
                self._running += 1
                self._start(loop, batch)

    def _queued_rows_below_batch(self) -> bool:
        return self.stats.queued_rows < self.max_batch_rows

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            size = head.x.shape[0]
            if batch and rows + size > self.max_batch_rows:
                break
            self._queue.popleft()
            self.stats.queued_rows -= size
            if head.future.cancelled():
                continue  # the client went away before its turn
            batch.append(head)
            rows += size
        return batch

    def _start(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="finmaas-model")
        x = batch[0].x if len(batch) == 1 else np.concatenate([p.x for p in batch])
        call = loop.run_in_executor(self._executor, self.predict, x)
        call.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        done: asyncio.Future[np.ndarray],
    ) -> None:
        self._running -= 1
        error = done.exception()
        if error is None:
            scores = done.result()
            self.stats.batches += 1
            start = 0
            for pending in batch:
                stop = start + pending.x.shape[0]
                if not pending.future.done():
                    pending.future.set_result(scores[start:stop])
                start = stop
            self.stats.rows += start
        else:
            failure = error if isinstance(error, FinmaasError) else _wrap(error)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(failure)
        self._dispatch(loop)
        if self._idle is not None and not self._running and not self._queue:
            self._idle.set()

    async def close(self) -> None:
        """Refuse new requests, let queued and running ones finish, stop the thread."""
        self._closing = True
        if self._running or self._queue:
            self._idle = asyncio.Event()
            self._dispatch(asyncio.get_running_loop())
            await self._idle.wait()
        if self._executor is not None:
            with contextlib.suppress(RuntimeError):
                self._executor.shutdown(wait=True)
            self._executor = None


def _wrap(error: BaseException) -> PredictorFailed:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return PredictorFailed(f"the model failed to predict: {first[:300]}")
