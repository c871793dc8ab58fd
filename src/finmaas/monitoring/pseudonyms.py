"""Keyed hashes for personal data: subject ids in decision records, ``pii`` inputs in
the prediction log.

The key is 32 random bytes in ``<home>/secrets/pseudonym.key`` (mode 0600), made
the first time a server starts. The same value always gives the same pseudonym
under one key, so records can still be joined; without the key a pseudonym
cannot be turned back into the value by trying candidates (unlike a plain hash
of, say, a national id number).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

KEY_BYTES = 32


def pseudonym_key(home: Path) -> bytes:
    """This home's key, created on first use (safe when several workers race)."""
    path = home / "secrets" / "pseudonym.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
    for _ in range(100):  # another worker may be between its create and its write
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} does not hold a {KEY_BYTES}-byte key")


def pseudonym(key: bytes, value: str) -> str:
    """32 hex digits of HMAC-SHA256(key, value)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]
