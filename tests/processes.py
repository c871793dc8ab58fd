"""Test helper: the processes a test run starts, and the one way to stop them.

Every process a test starts must be gone, and reaped, when the test ends, even when it
fails: a server killed without being waited for warns (``ResourceWarning``) in whichever
test the garbage collector happens to run, and its workers, orphaned, keep serving on a
port. :func:`stop_process` stops a process and everything in its process group;
:func:`processes_of` finds what a test run still has running (the ``conftest`` guard).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.waiting import wait_until

OWNER = "PYTEST_FINMAAS_OWNER"
"""Environment variable naming the test process (its pid) that started a process; every
process started from the tests inherits it, so one orphaned by a dead parent is found
too. Not ``FINMAAS_*``: the live servers' environment drops those."""


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    state: str
    command: str

    def __str__(self) -> str:
        zombie = ", exited but never waited for" if self.state == "Z" else ""
        return f"pid {self.pid} (parent {self.ppid}{zombie}): {self.command[:160]}"


def _read(pid: int) -> ProcessInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    shown = command.replace(b"\0", b" ").decode(errors="replace").strip() or f"[{name}]"
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0], shown)


def _all() -> dict[int, ProcessInfo]:
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (info := _read(int(entry.name))) is not None:
            found[info.pid] = info
    return found


def _started_by(pid: int, owner: int) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{OWNER}={owner}".encode() in environ.split(b"\0")


def descendants(pid: int, among: dict[int, ProcessInfo] | None = None) -> dict[int, ProcessInfo]:
    """The children of ``pid``, their children, and so on."""
    table = _all() if among is None else among
    found: dict[int, ProcessInfo] = {}
    parents = {pid}
    while parents:
        children = {p: i for p, i in table.items() if i.ppid in parents and p not in found}
        found.update(children)
        parents = set(children)
    return found


def processes_of(owner: int) -> dict[int, ProcessInfo]:
    """Every process ``owner`` (a test process) started that still exists: its
    descendants, and any process whose parent died (an orphan) that carries its mark."""
    table = _all()
    found = descendants(owner, table)
    for pid, info in table.items():
        if pid != owner and pid not in found and _started_by(pid, owner):
            found[pid] = info
    return found


def kill_and_reap(processes: dict[int, ProcessInfo]) -> None:
    """SIGKILL ``processes``, and wait for those that are this process's children (the
    others are reaped by their own parent, or by init once orphaned)."""
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid, info in processes.items():
        if info.ppid == os.getpid():
            with contextlib.suppress(ChildProcessError):  # reaped meanwhile
                os.waitpid(pid, 0)


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie has stopped running)."""
    return {pid for pid in pids if (info := _read(pid)) is not None and info.state != "Z"}


def has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether ``process`` has exited, without reaping it (unlike ``poll()``): until it is
    reaped its pid, and its process group's id, cannot be reused, so what it left in its
    group can still be found and killed."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:  # reaped by someone else
        return True


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """Stop ``process`` and every process it started, and reap it; its exit code.

    SIGTERM first, and up to ``timeout`` seconds to stop cleanly (a server drains and
    stops its workers); then SIGKILL. Whatever is left below it or in its process group
    (a server's workers: start it with ``start_new_session=True``) is killed too, and the
    process is always waited for, so no test leaves a zombie or an orphan behind.
    """
    pid = process.pid
    if not has_exited(process):
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: has_exited(process), timeout, interval=0.02):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: has_exited(process), 60, interval=0.02)
    table = _all()
    left = descendants(pid, table)
    group = {p: info for p, info in table.items() if info.pgid == pid and p != pid}
    if pid not in table:  # reaped already: its group id may now be another's
        group = {p: info for p, info in group.items() if _started_by(p, os.getpid())}
    left |= group
    kill_and_reap(left)
    wait_until(lambda: not running(set(left)), 30)
    return process.wait(timeout=60)
