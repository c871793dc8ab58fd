"""Tell an artifact's format from its bytes, without executing any of them.

Only headers and structure are read: a pickle is recognised by its protocol
header and never unpickled; a compressed file is decompressed just far enough
to see whether a pickle is inside; zip archives are listed, not extracted;
ONNX is parsed as protobuf data. Whatever is not recognised is ``None``, so a
file of unknown kind can never pass for one of the safe formats.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile
import zlib

import orjson

from finmaas.errors import FormatMismatch
from finmaas.runtimes.base import SAFE_FORMATS, ModelFormat

_PICKLE_PROTOCOLS = range(2, 6)
_SNIFF_INPUT = 1 << 20
"""Compressed bytes fed to a decompressor to find the first decompressed bytes."""
_HEAD = 16
_UBJ_LENGTHS = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8}
_SUPPORTED = ", ".join(SAFE_FORMATS)


def detect_format(data: bytes) -> ModelFormat | None:
    """Return the format ``data`` is in, or ``None`` when it is not one finmaas knows."""
    if not data:
        return None
    if is_pickle(data):
        return ModelFormat.PICKLE
    head = _decompressed_head(data)
    if head is not None:
        # joblib.dump(..., compress=…) output; anything else compressed is unknown
        return ModelFormat.PICKLE if is_pickle(head) else None
    if data.startswith(b"PK\x03\x04"):
        return ModelFormat.SKOPS if _is_skops(data) else None
    if data.startswith((b"tree\n", b"tree\r\n")) and b"version=" in data[:4096]:
        return ModelFormat.LIGHTGBM
    if data[:4096].lstrip()[:1] == b"{":
        if _is_xgboost_json(data):
            return ModelFormat.XGBOOST_JSON
        if _is_xgboost_ubj(data):
            return ModelFormat.XGBOOST_UBJ
        return None
    if _is_onnx(data):
        return ModelFormat.ONNX
    return None


def check_format(data: bytes, claimed: ModelFormat | None, *, filename: str) -> ModelFormat:
    """Return the detected format of ``data``; raise if it is unknown or not ``claimed``."""
    if not data:
        raise FormatMismatch(f"file {filename!r} is empty")
    detected = detect_format(data)
    if detected is None:
        raise FormatMismatch(
            f"file {filename!r} is not in a supported format ({_SUPPORTED}); "
            "pickle/joblib needs an admin and --allow-pickle"
        )
    if claimed is not None and claimed is not detected:
        raise FormatMismatch(
            f"file {filename!r} is not a valid {claimed} artifact: it looks like {detected}"
        )
    return detected


def is_pickle(data: bytes) -> bool:
    """A pickle of protocol 2 to 5 (also an uncompressed joblib file), by its header."""
    return len(data) >= 2 and data[0] == 0x80 and data[1] in _PICKLE_PROTOCOLS


def is_compressed(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib, gzip, bz2, xz or lzma header."""
    return _decompressed_head(data) is not None


def _decompressed_head(data: bytes) -> bytes | None:
    """The first decompressed bytes (``b""`` if corrupt), or ``None`` if not compressed.

    Only a bounded prefix is fed to the decompressor and only 16 bytes come out,
    so a compression bomb costs nothing.
    """
    prefix = data[:_SNIFF_INPUT]
    try:
        if data.startswith(b"\x1f\x8b"):
            return zlib.decompressobj(wbits=31).decompress(prefix, _HEAD)
        if len(data) >= 2 and data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0:
            return zlib.decompressobj().decompress(prefix, _HEAD)
        if data.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(prefix, _HEAD)
        if data.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
            return lzma.LZMADecompressor().decompress(prefix, _HEAD)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return b""
    return None


def _is_skops(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "schema.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _is_xgboost_json(data: bytes) -> bool:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and isinstance(document.get("learner"), dict)


def _is_xgboost_ubj(data: bytes) -> bool:
    """UBJSON object whose first key is ``learner`` (XGBoost writes keys in sorted order)."""
    size = _UBJ_LENGTHS.get(data[1:2])
    if size is None:
        return False
    length = int.from_bytes(data[2 : 2 + size], "big")
    return data[2 + size : 2 + size + length] == b"learner"


def _is_onnx(data: bytes) -> bool:
    """A ModelProto with an IR version, an opset and a graph of at least one node.

    Protobuf accepts many byte strings as *some* message, so parsing alone
    proves nothing; the required fields do.
    """
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError and whatever else arbitrary bytes provoke
        return False
    return (
        model.ir_version > 0
        and len(model.opset_import) > 0
        and len(model.graph.node) > 0
        and len(model.graph.output) > 0
    )
