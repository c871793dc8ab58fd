"""Background helpers: the periodic loop of every background task, and the heap
trimmer that keeps a worker's resident memory level."""

from __future__ import annotations

import asyncio
import logging
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from finmaas.background import HeapTrimmer, _glibc_trim, cancel, every, stop_with_parent

log = logging.getLogger("finmaas.tests.background")


async def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds; fail after a minute (a busy machine is slow)."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def test_every_runs_the_work_each_interval_until_cancelled() -> None:
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)

    async def scenario() -> None:
        task = every(0.01, work, name="finmaas-test", log=log, failed="test work failed")
        assert task.get_name() == "finmaas-test"
        await _until(lambda: len(calls) >= 3)
        await cancel(task)
        assert task.cancelled()
        stopped_at = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == stopped_at

    asyncio.run(scenario())


def test_cancel_lets_the_round_in_progress_finish() -> None:
    """Stopping a loop never cuts a round in half: a writer cancelled mid-write would
    lose what it had taken out of its buffer."""
    started = asyncio.Event()
    finished: list[int] = []

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(1)

    async def scenario() -> None:
        task = every(0.01, work, name="finmaas-test", log=log, failed="test work failed")
        await started.wait()
        await cancel(task)
        assert finished == [1]
        assert task.cancelled()

    asyncio.run(scenario())


def test_cancel_while_waiting_stops_at_once() -> None:
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)

    async def scenario() -> None:
        task = every(3600, work, name="finmaas-test", log=log, failed="test work failed")
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel(task), timeout=60)
        assert calls == []

    asyncio.run(scenario())


def test_every_logs_a_failed_round_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    async def scenario() -> None:
        task = every(0.01, work, name="finmaas-test", log=log, failed="test work failed")
        await _until(lambda: len(calls) >= 2)
        await cancel(task)

    with caplog.at_level(logging.WARNING, logger=log.name):
        asyncio.run(scenario())
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "test work failed")
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom"


def test_an_expected_failure_is_a_warning_or_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(warning: str | None) -> None:
        rounds: list[int] = []

        async def work() -> None:
            rounds.append(1)
            raise OSError("gone")

        task = every(
            0.01,
            work,
            name="finmaas-test",
            log=log,
            failed="test work failed",
            expected=OSError,
            warning=warning,
        )
        await _until(lambda: len(rounds) >= 2)
        await cancel(task)

    with caplog.at_level(logging.DEBUG, logger=log.name):
        asyncio.run(scenario("could not do the work: %s"))
        warned = [(r.levelno, r.getMessage()) for r in caplog.records]
        caplog.clear()
        asyncio.run(scenario(None))
    assert set(warned) == {(logging.WARNING, "could not do the work: gone")}
    assert len(warned) >= 2
    assert caplog.records == []


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_blocks_between_live_ones_go_back_to_the_os_when_trimmed() -> None:
    """What the worker's memory crept up by: pages freed between blocks still in use,
    which glibc keeps resident until ``malloc_trim``."""
    trim = _glibc_trim()
    assert trim is not None
    # 4 KiB objects come from malloc (pymalloc takes only up to 512 bytes); keeping one
    # in 50 leaves ~190 KiB holes, too far from the top of the heap to be released.
    blocks = [bytes(4000 + i % 7) for i in range(25_000)]
    kept = blocks[::50]
    del blocks
    before = _resident_bytes()
    trim()
    released = before - _resident_bytes()
    assert released >= 50 * 1024**2, f"only {released / 1024**2:.1f} MiB released"
    assert len(kept) == 500


def test_the_trimmer_trims_every_interval_until_closed() -> None:
    calls: list[int] = []

    async def scenario() -> None:
        trimmer = HeapTrimmer(interval=0.01, trim=lambda: calls.append(1))
        await trimmer.start()
        for _ in range(3000):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        await trimmer.close()
        stopped_at = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == stopped_at

    asyncio.run(scenario())
    assert len(calls) >= 3


_ARENA_PROBE = """
import ctypes, re, sys, tempfile, threading
from finmaas.background import limit_heap_arenas
assert limit_heap_arenas(1)
kept = []
def allocate():
    kept.append([bytes(1000 + i) for i in range(200)])  # malloc'd, not pymalloc'd
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(len(re.findall(r"<heap nr=", open(report.name).read())))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_threads_share_the_arenas_the_limit_allows() -> None:
    """Eight threads that allocate get no arena of their own beyond the limit (glibc
    counts its arenas in ``malloc_info``)."""
    found = subprocess.run(
        [sys.executable, "-c", _ARENA_PROBE], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "1"


_MMAP_PROBE = """
import ctypes, re, sys, tempfile
from finmaas.background import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold(1 << 20)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(8 << 20))  # a mapped block freed: glibc would raise its threshold
kept = libc.malloc(3 << 20)  # so this one would come from the heap
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    found = re.search(r'<total type="mmap" count="(\\d+)"', open(report.name).read())
    print(found.group(1))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_a_fixed_threshold_keeps_large_blocks_mapped() -> None:
    """After a mapped 8 MiB block is freed, glibc serves a 3 MiB block from the heap
    (its threshold rose); with the threshold fixed at 1 MiB that block is mapped: one
    mapping more than the interpreter's own."""

    def mapped(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _MMAP_PROBE, mode],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out)

    assert mapped("fixed") == mapped("default") + 1


def test_a_process_multiprocessing_did_not_start_has_no_parent_to_watch() -> None:
    assert stop_with_parent(grace=1.0) is False
