"""Fixtures of the LLM tests: the tiny GGUF models the tests write, and llama-cpp-python's
OpenAI-compatible server serving them on 127.0.0.1 (skipped when ``llama_cpp`` is not
installed: ``pip install -e '.[dev,llm]'``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.llm.engine import LlamaServer, start_llama_server, stop_llama_server
from tests.llm.tiny_gguf import write_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat model (llama architecture, ChatML template), written once a session."""
    pytest.importorskip("gguf")
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", seed=0)


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny embedding model: the same architecture, mean pooling."""
    pytest.importorskip("gguf")
    path = tmp_path_factory.mktemp("gguf") / "tiny-embedder.gguf"
    return write_tiny_llama(path, seed=1, pooling="mean", name="finmaas-tiny-embedder")


@pytest.fixture(scope="session")
def llama_server(
    tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """llama.cpp's server on the tiny chat model, once a session (per xdist worker)."""
    pytest.importorskip("llama_cpp.server")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    server = start_llama_server(tiny_llama, log)
    try:
        yield server
    finally:
        stop_llama_server(server)


@pytest.fixture(scope="session")
def embedding_server(
    tiny_embedder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """llama.cpp's server on the tiny embedding model, with ``--embedding``."""
    pytest.importorskip("llama_cpp.server")
    log = tmp_path_factory.mktemp("llama-server") / "embedder.log"
    server = start_llama_server(tiny_embedder, log, model="tiny-embedder", embedding=True)
    try:
        yield server
    finally:
        stop_llama_server(server)
