"""The tiny GGUF models the LLM tests write: deterministic, small, complete enough for
llama.cpp (byte tokens, ``▁``, special tokens, a chat template), and loadable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.llm.tiny_gguf import BOS_ID, CHATML_TEMPLATE, EOS_ID, UNK_ID, write_tiny_llama

gguf = pytest.importorskip("gguf")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_tiny_llama(tmp_path / "first.gguf", seed=7)
    again = write_tiny_llama(tmp_path / "again.gguf", seed=7)
    other = write_tiny_llama(tmp_path / "other.gguf", seed=8)
    assert _sha256(first) == _sha256(again)
    assert _sha256(first) != _sha256(other)
    assert first.stat().st_size < 1024 * 1024  # loads in milliseconds


def test_the_file_has_what_llama_cpp_needs(tiny_llama: Path) -> None:
    reader = gguf.GGUFReader(tiny_llama)

    def value(key: str) -> object:
        field = reader.get_field(key)
        assert field is not None, key
        return field.contents()

    assert value("general.architecture") == "llama"
    assert value("tokenizer.ggml.model") == "llama"
    tokens = value("tokenizer.ggml.tokens")
    assert isinstance(tokens, list)
    assert {f"<0x{byte:02X}>" for byte in range(256)} <= set(tokens)
    assert "\u2581" in tokens
    assert (value("tokenizer.ggml.unknown_token_id"), value("tokenizer.ggml.bos_token_id")) == (
        UNK_ID,
        BOS_ID,
    )
    assert value("tokenizer.ggml.eos_token_id") == EOS_ID
    assert value("tokenizer.chat_template") == CHATML_TEMPLATE
    assert reader.get_field("llama.pooling_type") is None


def test_the_embedding_model_says_it_pools_by_mean(tiny_embedder: Path) -> None:
    field = gguf.GGUFReader(tiny_embedder).get_field("llama.pooling_type")
    assert field is not None
    assert field.contents() == gguf.PoolingType.MEAN


def test_llama_cpp_loads_it_and_tokenizes_with_its_vocabulary(tiny_llama: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    llama = llama_cpp.Llama(str(tiny_llama), n_ctx=64, n_threads=1, verbose=False)
    try:
        assert llama.metadata["tokenizer.chat_template"] == CHATML_TEMPLATE
        tokens = llama.tokenize(b"hello bank\n")
        assert tokens[0] == BOS_ID
        pieces = [llama.detokenize([token]).decode() for token in tokens[1:]]
        # Whole words merge; the newline falls back to its byte token.
        assert pieces == [" hello", " bank", "\n"]
        assert llama.detokenize(tokens[1:]).decode() == " hello bank\n"
    finally:
        llama.close()
