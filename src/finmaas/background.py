"""Work beside the request path: the loop every periodic background task (writers,
refreshers) runs and how it stops, whether another process (a worker, a job) still
runs, a worker that stops with its parent, and giving freed heap memory back to the
operating system."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("finmaas.background")


def every(
    interval: float,
    work: Callable[[], Awaitable[object]],
    *,
    name: str,
    log: logging.Logger,
    failed: str,
    expected: type[Exception] | tuple[type[Exception], ...] = (),
    warning: str | None = None,
) -> asyncio.Task[None]:
    """Start a task that waits ``interval`` seconds, then awaits ``work()``, over and
    over until it is cancelled (stop it with :func:`cancel`, which lets a round in
    progress finish).

    A round that fails does not end the loop: the next one may succeed. An
    ``expected`` exception (a database that is away, a sink that is gone) is logged
    as the warning ``warning % exc``, or not at all when ``warning`` is None; any
    other exception is logged with its traceback under the message ``failed``.
    """
    return asyncio.create_task(_repeat(interval, work, log, failed, expected, warning), name=name)


async def _repeat(
    interval: float,
    work: Callable[[], Awaitable[object]],
    log: logging.Logger,
    failed: str,
    expected: type[Exception] | tuple[type[Exception], ...],
    warning: str | None,
) -> None:
    while True:
        await asyncio.sleep(interval)  # a cancel while waiting stops the loop at once
        round_ = asyncio.ensure_future(work())
        try:
            await asyncio.shield(round_)
        except asyncio.CancelledError:
            # Stop after the round in progress, never in its middle: a writer cut off
            # mid-write would lose what it had taken out of its buffer.
            await asyncio.wait([round_])
            _report(round_, log, failed, expected, warning)
            raise
        except expected as exc:
            if warning is not None:
                log.warning(warning, exc)
        except Exception:
            log.exception(failed)


def _report(
    round_: asyncio.Future[object],
    log: logging.Logger,
    failed: str,
    expected: type[Exception] | tuple[type[Exception], ...],
    warning: str | None,
) -> None:
    """Log how a round that finished after its loop was cancelled failed, if it did."""
    if round_.cancelled():
        return
    exc = round_.exception()
    if exc is None:
        return
    if isinstance(exc, expected):
        if warning is not None:
            log.warning(warning, exc)
    else:
        log.error(failed, exc_info=exc)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Stop ``task`` and wait until it has stopped; nothing to do for None.

    A loop from :func:`every` stops at once while it waits for its next round, and
    after the round in progress otherwise.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_with_parent(grace: float) -> bool:
    """Stop this process when the process that started it exits, however it exits
    (SIGKILL included); True when the watch is armed, False (and nothing done) in a
    process :mod:`multiprocessing` did not start.

    A server worker serves the port its supervisor bound; a worker that outlived a
    killed supervisor kept answering, and kept the port from a new server. A daemon
    thread waits on the parent's sentinel: a pipe made when the process was started,
    whose other end only the parent holds, so the kernel closes it when the parent
    dies, and a parent that died before the watch was armed is seen at once. The
    thread then sends this process SIGTERM, the graceful stop (drain, flush usage and
    records), and ends it with ``os._exit`` if it still runs ``grace`` seconds later.

    Not Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): it fires when the
    parent *thread* that started the child exits, it can only be set by the child
    once it runs (a parent killed before that is missed unless the child compares
    ``getppid()`` with a pid it was told), and it is Linux only. The pipe is none of
    these, and works the same on every platform multiprocessing runs on.
    """
    parent = multiprocessing.parent_process()
    sentinel = None if parent is None else parent.sentinel
    if parent is None or sentinel is None:
        return False
    threading.Thread(
        target=_stop_when_gone,
        args=(parent.pid, sentinel, grace),
        name="finmaas-parent-watch",
        daemon=True,
    ).start()
    return True


def _stop_when_gone(parent: int | None, sentinel: int, grace: float) -> None:
    multiprocessing.connection.wait([sentinel])
    log.warning("the supervisor (pid %s) is gone: this worker stops", parent)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)  # a daemon thread: a worker that stops in time never wakes it
    log.error("this worker did not stop %.0f s after its supervisor: exiting now", grace)
    os._exit(1)


TRIM_INTERVAL = 30.0
"""Seconds between returns of the C heap's free pages to the operating system."""


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc, else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")  # by name: find_library would start a subprocess
        libc.malloc_trim  # noqa: B018  (glibc's own; musl and others have no such function)
    except (OSError, AttributeError):
        return None
    return libc


def _glibc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return None
    trim = libc.malloc_trim
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


M_ARENA_MAX = -8
"""mallopt's parameter for the most arenas glibc creates (malloc.h)."""


def limit_heap_arenas(count: int) -> bool:
    """Let glibc's allocator create at most ``count`` arenas in this process (what the
    ``MALLOC_ARENA_MAX`` environment variable sets at exec); True when it took effect.

    glibc gives a thread that allocates while the others' arenas are busy an arena of
    its own, up to 8 per core, and never gives one back: in a 30-minute soak a worker
    went from 9 to 12 arenas (27 -> 43 MB resident) as more pool threads overlapped,
    with nothing live behind it. Call it before the worker starts its threads.
    """
    return _mallopt(M_ARENA_MAX, count)


M_MMAP_THRESHOLD = -3
"""mallopt's parameter for the size from which a block gets its own mapping (malloc.h)."""
MMAP_THRESHOLD = 1 << 20
"""Blocks of 1 MiB and more are mapped on their own, and unmapped when freed."""


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Map every block of ``size`` bytes or more on its own, for good; True when it took
    effect.

    glibc starts at 128 KiB but raises the threshold to the size of each mapped block
    that is freed, up to 32 MiB: after the prediction log frees its first 8 MiB row
    group, buffers up to that size come from the arenas, where the holes they leave
    stay resident (a worker's thread arenas grew 14 MB between minutes 10 and 30 of a
    soak). A fixed threshold keeps large, short-lived buffers out of the arenas.
    """
    return _mallopt(M_MMAP_THRESHOLD, size)


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; False where the C library is not glibc or
    the call failed."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(parameter, value))


class HeapTrimmer:
    """Every ``interval`` seconds, gives the free pages of the C heap back to the OS.

    Under steady load, glibc's allocator keeps the memory a worker freed (batches,
    decision records, SQLite and Arrow buffers freed on other threads) in its arenas,
    and the holes between live blocks are not returned on their own: resident memory
    crept up with no live object behind it. ``malloc_trim(0)`` releases every whole
    free page of every arena (measured in a worker: 8-23 MB each time). It runs in a
    thread, off the event loop, and does nothing where the C library is not glibc; a
    call took 0.1-0.2 ms with little to return and 6.6 ms returning 100 MB, holding
    each arena's lock only while it walks that arena.
    """

    def __init__(
        self, interval: float = TRIM_INTERVAL, trim: Callable[[], object] | None = None
    ) -> None:
        self.interval = interval
        self._given = trim
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        trim = self._given or _glibc_trim()
        if trim is not None:
            self._task = every(
                self.interval,
                lambda: asyncio.to_thread(trim),
                name="finmaas-heap-trim",
                log=log,
                failed="heap trim failed",
            )

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
