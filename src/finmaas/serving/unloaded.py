"""The models a repository client unloaded from this server (Open Inference V2
``POST /v2/repository/models/{name}/unload``).

As in Triton, an unloaded model is not ready and serves nothing on this server
until ``…/load``; the registry and every other server are not affected, and a
restart of the server forgets the unloads. The workers of one server share the
set through a small JSON file in the server's run folder (each worker rereads
it on its alias refresh, so an unload reaches every worker within that
interval); a server with one worker keeps it in memory.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson


class UnloadedModels:
    """A set of model names, shared with the server's other workers through ``path``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._names: frozenset[str] = frozenset()

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def add(self, name: str) -> None:
        with self._locked():
            self._write(self._read() | {name})

    def discard(self, name: str) -> None:
        with self._locked():
            self._write(self._read() - {name})

    def reload(self) -> None:
        """Read what the other workers wrote (blocking file I/O: call it in a thread)."""
        if self.path is not None:
            self._names = self._read()

    def _read(self) -> frozenset[str]:
        if self.path is None:
            return self._names
        try:  # a few bytes, read on every refresh: no clock or inode games
            names = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return frozenset()
        return frozenset(str(name) for name in names)

    def _write(self, names: frozenset[str]) -> None:
        self._names = names
        if self.path is None:
            return
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(orjson.dumps(sorted(names)))
        partial.replace(self.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        with self.path.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
