"""AdaptiveBatcher: concurrent requests for one loaded model share one model call.

Policy: batch what arrived while the model was busy, and never make a request
wait for company when the model is idle.

* Idle model: go now. When no model call is running, a request is handed to a
  model thread at once, without sleeping, so a lone request at low load pays no
  batching delay at all.
* Busy model: queue. Requests that arrive while every model thread is busy wait
  in a FIFO queue. When a call finishes, the freed thread takes the head of the
  queue as one batch: whole requests in arrival order, up to ``max_batch_rows``
  rows in all (a single larger request runs alone; a request is never split).
  The running call is the window in which a batch gathers, so batches grow with
  the load by themselves and shrink back to one request when it drops.
* Top-up, only with ``threads > 1``: while some call is running and another
  thread is free, the free thread waits until ``max_batch_rows`` rows are queued
  or the oldest queued request has waited ``max_wait`` (read from ``clock``),
  whichever comes first. With one thread a free thread means an idle model, and
  idling it on purpose would only add latency, so ``max_wait`` is not used.

So a request's batch starts at most ``max_wait`` plus the rest of one running
call after it arrives, unless a full batch is already queued ahead of it (the
model is overloaded; ``max_queue_rows`` bounds how far). Seldon MLServer's
batcher, by contrast, always waits up to its timeout for a batch to fill, even
when the model has nothing else to do.

Fast models run on the event loop (``inline_below``): once the batcher has seen
:data:`CALLS_BEFORE_INLINE` calls and their moving average is under
``inline_below`` seconds, a batch of at most ``max_batch_rows`` rows is scored on
the loop, scheduled with ``call_soon`` so the requests already ready in this turn of
the loop queue behind it. Handing a call to a thread and back costs more than a
fast model's whole call (a wake-up of the thread, a wake-up of the loop and two
hand-overs of the GIL: 50 µs of CPU per one-row request, measured in process),
while a call that takes the loop for a few hundred microseconds delays nobody
more than the thread's GIL hand-overs would. A larger request, and every call
of a model whose average rises past the bound, go to the threads.

Model calls run on a ``ThreadPoolExecutor`` the batcher owns (ONNX Runtime,
LightGBM and XGBoost release the GIL), not on ``anyio.to_thread``: a pool per
model gives exactly ``threads`` concurrent calls, keeps one slow model from
taking worker threads other models need, costs less per call and works the same
under asyncio and uvloop. Inputs are joined with one ``np.concatenate`` and the
scores handed back as slices. A failing call fails every request of its batch
and nothing else; a full queue refuses at once instead of growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from finmaas.errors import FinmaasError, PredictorFailed, QueueFull, Unavailable
from finmaas.monitoring.metrics import BatchTimings

CALLS_BEFORE_INLINE = 8
"""Model calls a batcher times on its threads before it may score on the event loop."""
_SMOOTHING = 0.2
"""Weight of the newest call in the moving average of call times."""

Predict = Callable[[np.ndarray], np.ndarray]
Served = Callable[[np.ndarray, np.ndarray], None]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BatcherStats:
    """A snapshot of an :class:`AdaptiveBatcher`'s counters, for metrics."""

    batches: int
    """Model calls finished, failed ones included."""
    failed_batches: int
    """Model calls that raised."""
    requests: int
    """Requests accepted by ``submit``."""
    rows: int
    """Rows sent to the model by the finished calls."""
    queued_rows: int
    """Rows waiting for a model thread now."""
    running: int
    """Model calls in flight now."""

    @property
    def mean_batch_rows(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


@dataclass(slots=True, eq=False)
class _Request:
    x: np.ndarray
    rows: int
    future: asyncio.Future[np.ndarray]
    arrived: float = 0.0
    queued: bool = False


class AdaptiveBatcher:
    """Batches the ``predict`` calls of one loaded model; see the module docstring.

    Parameters:
        predict: the model's ``Predictor.predict``: float64 rows in, scores of
            shape ``(n,)`` or ``(n, k)`` out; thread-safe when ``threads > 1``.
        max_batch_rows: most rows in one call; a larger request runs alone.
        max_wait: seconds a free thread may wait for a batch to fill while
            another call runs (only with ``threads > 1``).
        max_queue_rows: rows that may wait; beyond that ``submit`` refuses.
        threads: model calls that may run at the same time.
        clock: monotonic seconds, for ``max_wait``.
        timings: where each model call's time and rows are observed, for metrics.
        served: called on the event loop with each successful call's rows and
            scores (drift counting): once per batch, not per request.
        inline_below: score a batch of at most ``max_batch_rows`` rows on the event
            loop while the moving average of call times is under this many seconds
            (0: always on the threads); see the module docstring.

    ``submit`` and ``close`` must be called from the event loop's thread. The
    batcher may be built outside a running loop; its threads start on first use.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_rows: int = 64,
        max_wait: float = 0.0005,
        max_queue_rows: int = 4096,
        threads: int = 1,
        clock: Clock = time.monotonic,
        timings: BatchTimings | None = None,
        served: Served | None = None,
        inline_below: float = 0.0,
    ) -> None:
        if max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be ≥ 1, got {max_batch_rows}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be ≥ 0, got {max_wait}")
        if max_queue_rows < 0:
            raise ValueError(f"max_queue_rows must be ≥ 0, got {max_queue_rows}")
        if threads < 1:
            raise ValueError(f"threads must be ≥ 1, got {threads}")
        if inline_below < 0:
            raise ValueError(f"inline_below must be ≥ 0, got {inline_below}")
        self.predict = predict
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.max_queue_rows = max_queue_rows
        self.threads = threads
        self.clock = clock
        self.timings = timings
        self.served = served
        self.inline_below = inline_below
        self._call_seconds = 0.0
        """Moving average of the model calls' seconds."""
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._running = 0
        self._closing = False
        self._executor: ThreadPoolExecutor | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None
        self._requests = 0
        self._batches = 0
        self._failed_batches = 0
        self._rows = 0

    @property
    def stats(self) -> BatcherStats:
        return BatcherStats(
            batches=self._batches,
            failed_batches=self._failed_batches,
            requests=self._requests,
            rows=self._rows,
            queued_rows=self._queued_rows,
            running=self._running,
        )

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Score the rows of one request as part of a batch; return exactly their scores.

        Raises :class:`Unavailable` at once when the batcher is closing or its
        queue is full, and the model's error when the call of its batch fails.
        """
        if self._closing:
            raise Unavailable("model is shutting down")
        rows = x.shape[0]
        loop = asyncio.get_running_loop()
        if not self._queue and (
            self._running == 0 or (self._running < self.threads and self.max_wait <= 0)
        ):
            request = _Request(x, rows, loop.create_future())
            self._requests += 1
            self._start([request], loop)
        else:
            # Refuse only when others are waiting, so any single request can run.
            if self._queue and self._queued_rows + rows > self.max_queue_rows:
                raise QueueFull(
                    f"model queue is full ({self._queued_rows} rows waiting); retry later"
                )
            request = _Request(x, rows, loop.create_future(), self.clock(), queued=True)
            self._requests += 1
            self._queue.append(request)
            self._queued_rows += rows
            self._dispatch(loop)
        try:
            return await request.future
        except asyncio.CancelledError:
            # The caller went away: if the request still waits, take it out so it
            # neither reaches the model nor counts against the queue limit.
            if request.queued:
                request.queued = False
                self._queued_rows -= rows
                self._queue.remove(request)
            raise

    async def close(self) -> None:
        """Refuse new requests, finish every queued and running one, stop the threads.

        Safe to call more than once, and from several tasks at the same time.
        """
        self._closing = True
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dispatch(loop)  # while closing nothing waits to top up a batch
        if self._running or self._queue:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()
        executor, self._executor = self._executor, None
        if executor is not None:
            # Every call has finished, so the threads are idle and exit at once.
            executor.shutdown(wait=True)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start batches while a model thread is free and something is queued."""
        while self._queue and self._running < self.threads:
            if (
                self._running
                and self.max_wait > 0
                and not self._closing
                and self._queued_rows < self.max_batch_rows
            ):
                delay = self._queue[0].arrived + self.max_wait - self.clock()
                if delay > 0:
                    if self._timer is None:
                        self._timer = loop.call_later(delay, self._on_timer, loop)
                    return
            batch = self._take()
            if batch:
                self._start(batch, loop)
        if self._timer is not None and not self._queue:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._dispatch(loop)

    def _take(self) -> list[_Request]:
        """Pop the next batch: whole requests in order, at most ``max_batch_rows`` rows."""
        queue = self._queue
        batch: list[_Request] = []
        total = 0
        while queue:
            request = queue[0]
            if request.future.done():  # cancelled; its caller has not cleaned up yet
                queue.popleft()
                request.queued = False
                self._queued_rows -= request.rows
                continue
            if batch and (
                total + request.rows > self.max_batch_rows or not _joinable(batch[0].x, request.x)
            ):
                break
            queue.popleft()
            request.queued = False
            self._queued_rows -= request.rows
            batch.append(request)
            total += request.rows
            if total >= self.max_batch_rows:
                break
        return batch

    @property
    def inline(self) -> bool:
        """Whether a batch of at most ``max_batch_rows`` rows is scored on the loop now."""
        return (
            self.inline_below > 0
            and self._batches >= CALLS_BEFORE_INLINE
            and self._call_seconds < self.inline_below
        )

    def _start(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        self._running += 1
        if self.inline and sum(r.rows for r in batch) <= self.max_batch_rows:
            loop.call_soon(self._run_inline, batch, loop)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="finmaas-predict")
        self._executor.submit(self._call, batch, loop)

    def _run_inline(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        """Run one batch on the event loop."""
        self._finish(batch, *self._score(batch), loop)

    def _call(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        """Run one batch on a model thread and hand the outcome to the loop."""
        results, error, seconds, scored = self._score(batch)
        # A closed loop has nobody left to answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._finish, batch, results, error, seconds, scored, loop)

    def _score(
        self, batch: list[_Request]
    ) -> tuple[list[np.ndarray], BaseException | None, float, tuple[np.ndarray, np.ndarray] | None]:
        """Call the model on a batch: each request's scores or the error, the call's
        seconds, and the rows and scores of a successful call."""
        results: list[np.ndarray] = []
        error: BaseException | None = None
        started = time.perf_counter()
        scored: tuple[np.ndarray, np.ndarray] | None = None
        try:
            x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
            scores = self.predict(x)
            results = _scatter(scores, batch)
            scored = (x, scores)
        except BaseException as exc:  # every waiter must hear back, whatever was raised
            error = exc
        return results, error, time.perf_counter() - started, scored

    def _finish(
        self,
        batch: list[_Request],
        results: list[np.ndarray],
        error: BaseException | None,
        seconds: float,
        scored: tuple[np.ndarray, np.ndarray] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._running -= 1
        self._call_seconds = (
            seconds
            if not self._batches
            else self._call_seconds + _SMOOTHING * (seconds - self._call_seconds)
        )
        self._batches += 1
        rows = sum(r.rows for r in batch)
        self._rows += rows
        if self.timings is not None:
            self.timings.observe(rows, seconds)
        self._dispatch(loop)  # keep the model busy before waking the callers
        if error is None:
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():  # a cancelled caller's rows are dropped
                    request.future.set_result(result)
        else:
            self._failed_batches += 1
            failure = error if isinstance(error, FinmaasError) else _predictor_failed(error)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(failure)
        if self._drained is not None and not self._running and not self._queue:
            self._drained.set()
        if scored is not None and self.served is not None:
            self.served(*scored)  # last: a failing hook must not keep a caller waiting


def _joinable(first: np.ndarray, other: np.ndarray) -> bool:
    """Whether ``other`` can be concatenated after ``first`` without changing either."""
    return first.shape[1:] == other.shape[1:] and first.dtype == other.dtype


def _scatter(scores: np.ndarray, batch: list[_Request]) -> list[np.ndarray]:
    """Cut a batch's scores back into one slice per request."""
    total = sum(r.rows for r in batch)
    got = scores.shape[0] if scores.ndim else 0
    if got != total:
        raise PredictorFailed(
            f"the model failed to predict: it returned {got} rows of scores for {total} rows"
        )
    if len(batch) == 1:
        return [scores]
    results: list[np.ndarray] = []
    start = 0
    for request in batch:
        stop = start + request.rows
        results.append(scores[start:stop])
        start = stop
    return results


def _predictor_failed(error: BaseException) -> PredictorFailed:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    failure = PredictorFailed(f"the model failed to predict: {first[:300]}")
    failure.__cause__ = error
    return failure
