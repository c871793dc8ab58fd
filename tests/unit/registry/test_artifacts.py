"""The content-addressed artifact store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from finmaas.errors import ArtifactCorrupted, Invalid, NotFound
from finmaas.registry import LocalArtifactStore


def test_put_and_read_round_trip(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    stored = store.put_bytes(b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    assert (stored.digest, stored.size) == (digest, 11)
    assert store.path_of(digest) == tmp_path / "sha256" / digest[:2] / digest
    assert store.read(digest) == b"model bytes"
    assert store.exists(digest)


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    source = tmp_path / "model.txt"
    source.write_bytes(b"abc")
    first = store.put_file(source)
    second = store.put_bytes(b"abc")
    assert first == second
    assert len(list((tmp_path / "sha256").rglob("*"))) == 2  # one folder, one file
    assert list((tmp_path / "tmp").iterdir()) == []


def test_corrupted_artifact_is_never_returned(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"original").digest
    store.path_of(digest).write_bytes(b"tampered")
    actual = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(ArtifactCorrupted) as err:
        store.read(digest)
    assert str(err.value) == (
        f"artifact sha256:{digest} is corrupted: its bytes hash to sha256:{actual}; refusing to load it"
    )


def test_corrupted_file_is_replaced_by_a_new_put(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"original").digest
    store.path_of(digest).write_bytes(b"tampered")
    store.put_bytes(b"original")
    assert store.read(digest) == b"original"


def test_missing_artifact(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = "0" * 64
    with pytest.raises(NotFound) as err:
        store.read(digest)
    assert str(err.value) == f"artifact sha256:{digest} is missing from {tmp_path}"


def test_oversized_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path, max_bytes=4)
    with pytest.raises(Invalid) as err:
        store.put_bytes(b"too large")
    assert str(err.value) == "artifact is larger than the 4 byte limit"
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "sha256").exists()


@pytest.mark.parametrize("digest", ["../../etc/passwd", "A" * 64, "0" * 63])
def test_digests_are_validated_before_touching_paths(tmp_path: Path, digest: str) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(Invalid) as err:
        store.read(digest)
    assert str(err.value) == f"artifact digest must be 64 lowercase hex characters, got {digest!r}"


def test_delete(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"x").digest
    assert store.delete(digest) is True
    assert store.delete(digest) is False
    assert not store.exists(digest)
