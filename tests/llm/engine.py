"""Test helper: a real LLM engine on 127.0.0.1, llama-cpp-python's OpenAI-compatible
server (``python -m llama_cpp.server``), serving a GGUF file the tests wrote.

It is the upstream the LLM gateway tests call, and the reference the embedded engine is
compared with. Like ``finmaas serve`` in ``tests.integration.serving.live`` it runs in
its own session and is always stopped and reaped (:func:`tests.processes.stop_process`).

What the engine does, as the tests found it (``tests/llm/test_engine.py`` keeps each fact
checked): one request at a time (the server holds a lock around its one model), greedy
decoding (``temperature=0``) or a request ``seed`` gives the same text every time,
non-streamed answers carry OpenAI's ``usage``, and streamed chunks never do, even when
``stream_options.include_usage`` asks for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.integration.serving.live import free_port
from tests.processes import has_exited, stop_process
from tests.waiting import wait_until

if TYPE_CHECKING:
    import openai

READY_WITHIN = 120.0
"""Seconds the engine may take to answer ``/v1/models``: it imports FastAPI and loads the
model, well under a second for the tiny model on an idle machine."""

MODEL_ID = "tiny-llama"
"""The model id the engine answers to (``--model_alias``)."""


@dataclass
class LlamaServer:
    url: str
    """``http://127.0.0.1:PORT``; the OpenAI base URL is :attr:`base_url`."""
    process: subprocess.Popen[bytes]
    model_path: Path
    model: str
    """The model id to send in requests."""
    log: Path
    """Where the engine's stdout and stderr go."""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def openai(self) -> openai.OpenAI:
        """The official SDK pointed at the engine (it wants a key; the engine needs none)."""
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="unused", max_retries=0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_llama_server(
    model_path: Path,
    log: Path,
    *,
    model: str = MODEL_ID,
    embedding: bool = False,
    n_ctx: int = 512,
    seed: int = 0,
    threads: int = 1,
    extra: tuple[str, ...] = (),
) -> LlamaServer:
    """Serve ``model_path`` on a free port of 127.0.0.1 and wait until ``/v1/models``
    answers; raises (with the engine's output) if it exits or never answers.

    ``threads`` defaults to one: the tests run beside others on two cores, and the tiny
    model gains nothing from more. ``embedding`` turns on ``/v1/embeddings``.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--seed",
        str(seed),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--embedding",
        str(embedding),
        *extra,
    ]
    # Its settings come from the command line only (it also reads the environment).
    env = {k: v for k, v in os.environ.items() if k not in {"CONFIG_FILE", "MODEL", "PORT"}}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LlamaServer(f"http://127.0.0.1:{port}", process, model_path, model, log)
    try:
        ready = wait_until(lambda: _answers(server), READY_WITHIN, interval=0.05)
    except BaseException:
        stop_process(process, timeout=5)
        raise
    if has_exited(process) or not ready:
        code = stop_process(process, timeout=5)
        what = "exited" if ready else f"did not answer in {READY_WITHIN:.0f} s (then stopped)"
        raise RuntimeError(f"llama_cpp.server {what} with {code}: {server.output()[-3000:]}")
    return server


def _answers(server: LlamaServer) -> bool:
    """Whether ``/v1/models`` answers (or the engine has exited: nothing to wait for)."""
    if has_exited(server.process):
        return True
    try:
        return httpx.get(f"{server.base_url}/models", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def stop_llama_server(server: LlamaServer) -> int:
    """SIGTERM, then SIGKILL; the engine is gone and reaped when this returns."""
    return stop_process(server.process, timeout=30)
