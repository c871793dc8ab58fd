"""Content-addressed artifact storage.

An artifact is stored under its sha256 digest and verified every time it is
read: bytes that no longer match their digest raise :class:`ArtifactCorrupted`
and are never handed to a runtime. A write goes to a temporary file in the
same folder, is fsynced, then renamed into place, so a reader never sees half
a file. ``ArtifactStore`` is the interface; an object-storage (fsspec) store can
implement it later.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from finmaas.errors import ArtifactCorrupted, Invalid, NotFound

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredArtifact:
    digest: str
    size: int


class ArtifactStore(Protocol):
    def put_file(self, path: Path) -> StoredArtifact: ...

    def put_bytes(self, data: bytes) -> StoredArtifact: ...

    def read(self, digest: str) -> bytes:
        """Return the bytes of ``digest`` after checking them against it."""
        ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> bool: ...


class LocalArtifactStore:
    """Artifacts in a local folder: ``<root>/sha256/<2 hex>/<64 hex>``."""

    def __init__(self, root: Path, *, max_bytes: int = 2 * 1024**3) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, digest: str) -> Path:
        _check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest

    def put_file(self, path: Path) -> StoredArtifact:
        try:
            with path.open("rb") as source:
                return self._put(source)
        except FileNotFoundError:
            raise NotFound(f"file {str(path)!r} does not exist") from None
        except IsADirectoryError:
            raise Invalid(f"{str(path)!r} is a folder, not a model file") from None

    def put_bytes(self, data: bytes) -> StoredArtifact:
        import io

        return self._put(io.BytesIO(data))

    def _put(self, source: BinaryIO) -> StoredArtifact:
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise Invalid(f"artifact is larger than the {self.max_bytes} byte limit")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            final = self.path_of(digest.hexdigest())
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists() and _digest_of(final) == digest.hexdigest():
                tmp.unlink()
            else:
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            return StoredArtifact(digest=digest.hexdigest(), size=size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def read(self, digest: str) -> bytes:
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"artifact sha256:{digest} is missing from {self.root}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactCorrupted(
                f"artifact sha256:{digest} is corrupted: its bytes hash to sha256:{actual}; "
                "refusing to load it"
            )
        return data

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def delete(self, digest: str) -> bool:
        path = self.path_of(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            path.parent.rmdir()
        return True


def _check_digest(digest: str) -> None:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise Invalid(f"artifact digest must be 64 lowercase hex characters, got {digest[:80]!r}")


def _digest_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
