"""Uploads streamed to disk: a ``multipart/form-data`` body parsed as it arrives.

A model file or a training data file reaches the control plane as a small JSON
part (``metadata``) and one file part. The file part is written, message by
message, to a private folder (mode 0700) under ``<home>/uploads``, so a worker
holds at most one ASGI message of it at a time; the folder is removed when the
request ends, whatever happens. :class:`UploadSlots` bounds how many uploads a
worker receives at once. Parsing is python-multipart's streaming parser (the
one Starlette uses).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from finmaas.errors import Busy, Invalid
from finmaas.web.http import BodyTooLarge, Receive, Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

SPOOL = "uploads"
"""The folder under the home where uploads are spooled while their request lasts."""

STALE_SPOOL_SECONDS = 24 * 3600.0
"""A spool folder this old was left by a process that died; the next worker removes it."""


@dataclass(frozen=True)
class UploadedFile:
    """A file part on disk; ``filename`` is the client's name for it ('' when it gave none)."""

    path: Path
    filename: str
    size: int


@dataclass(frozen=True)
class Form:
    """An upload's parts: small fields in memory, files on disk."""

    fields: dict[str, bytes]
    files: dict[str, UploadedFile]


@dataclass(slots=True)
class UploadRequest(Request):
    """A request whose body was an upload: its parts, spooled (``body`` is empty)."""

    form: Form


def is_multipart(headers: dict[bytes, bytes]) -> bool:
    content_type = headers.get(b"content-type", b"")
    return content_type[:19].lower() == b"multipart/form-data"


class UploadSlots:
    """At most ``limit`` uploads received at once by this worker (one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.taken >= self.limit:
            raise Busy(
                f"this server is receiving {self.limit} uploads already "
                "(max_concurrent_uploads); retry in a moment",
                retry_after=1,
            )
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


@contextlib.contextmanager
def spool_folder(root: Path) -> Iterator[Path]:
    """A fresh private folder under ``root``, removed with everything in it on exit."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=root))  # mode 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_spool(root: Path, *, older_than: float = STALE_SPOOL_SECONDS) -> int:
    """Remove spool folders a dead process left behind; returns how many."""
    removed = 0
    cutoff = time.time() - older_than
    for folder in root.glob("upload-*") if root.is_dir() else ():
        try:
            newest = max(
                [folder.stat().st_mtime, *(entry.stat().st_mtime for entry in folder.iterdir())]
            )
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


async def spool_form(
    receive: Receive,
    headers: dict[bytes, bytes],
    folder: Path,
    *,
    file_parts: frozenset[str],
    field_parts: frozenset[str],
    max_bytes: int,
    max_field_bytes: int,
) -> Form:
    """Read a ``multipart/form-data`` body: ``file_parts`` into files in ``folder``,
    ``field_parts`` into memory (each at most ``max_field_bytes``); any other part, a
    part sent twice, or a body over ``max_bytes`` is refused while it arrives."""
    _, options = parse_options_header(headers.get(b"content-type", b""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise Invalid("multipart/form-data needs a 'boundary' parameter in Content-Type")
    sink = _FormSink(folder, file_parts, field_parts, max_field_bytes)
    try:
        parser = MultipartParser(boundary, sink.callbacks())
    except ValueError as exc:  # FormParserError: e.g. a boundary over 70 characters
        raise Invalid(f"malformed multipart body: {exc}") from None
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("client disconnected")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"request body is over the {max_bytes} byte limit")
                parser.write(chunk)
            if not message.get("more_body", False):
                break
    except MultipartParseError as exc:
        raise Invalid(f"malformed multipart body: {exc}") from None
    finally:
        sink.close()
    if not sink.ended:
        raise Invalid("the multipart body ended before its closing boundary")
    return Form(sink.fields, sink.files)


class _FormSink:
    """python-multipart's callbacks: where each part's headers and bytes go."""

    def __init__(
        self,
        folder: Path,
        file_parts: frozenset[str],
        field_parts: frozenset[str],
        max_field_bytes: int,
    ) -> None:
        self.folder = folder
        self.file_parts = file_parts
        self.field_parts = field_parts
        self.allowed = ", ".join(sorted(file_parts | field_parts))
        self.max_field_bytes = max_field_bytes
        self.fields: dict[str, bytes] = {}
        self.files: dict[str, UploadedFile] = {}
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._name = ""
        self._filename = ""
        self._field: bytearray | None = None
        self._file: BinaryIO | None = None
        self._size = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._disposition = b""
        self._header_name.clear()
        self._header_value.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        kind, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if kind != b"form-data" or raw_name is None:
            raise Invalid("every part needs a 'Content-Disposition: form-data; name=...' header")
        name = raw_name.decode("utf-8", "replace")
        if name not in self.file_parts and name not in self.field_parts:
            raise Invalid(f"unknown part {name[:64]!r}; allowed: {self.allowed}")
        if name in self.fields or name in self.files:
            raise Invalid(f"part {name!r} is sent twice")
        self._name = name
        self._size = 0
        if name in self.file_parts:
            self._filename = options.get(b"filename", b"").decode("utf-8", "replace")
            # The name on disk is the part's (one of file_parts), never the client's.
            self._file = (self.folder / name).open("xb")
        else:
            self._field = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._file is not None:
            self._file.write(memoryview(data)[start:end])
        elif self._field is not None:
            if self._size > self.max_field_bytes:
                raise BodyTooLarge(
                    f"the {self._name!r} part is over the {self.max_field_bytes} byte limit"
                )
            self._field += data[start:end]

    def _part_end(self) -> None:
        if self._file is not None:
            self.close()
            path = self.folder / self._name
            self.files[self._name] = UploadedFile(path, self._filename, self._size)
        elif self._field is not None:
            self.fields[self._name] = bytes(self._field)
            self._field = None

    def _end(self) -> None:
        self.ended = True
