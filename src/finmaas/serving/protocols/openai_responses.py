"""OpenAI response bodies, whole and streamed, from the pieces a route has.

``model`` is always the string the client asked for (``NAME@alias`` stays so), as
OpenAI echoes it. A stream is Server-Sent Events: ``data: {chunk}\\n\\n`` per chunk,
then :data:`SSE_DONE`; with ``stream_options.include_usage`` the last chunk before it
has ``"choices": []`` and the ``usage`` (:func:`encode_usage_chunk`). Pieces that come
from the engine as JSON (``tool_calls``, ``logprobs``) are passed as bytes and written
as they are.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

SSE_DONE = b"data: [DONE]\n\n"
SSE_CONTENT_TYPE = b"text/event-stream"
CHAT_OBJECT = "chat.completion"
CHUNK_OBJECT = "chat.completion.chunk"
COMPLETION_OBJECT = "text_completion"

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the engine counted them."""

    prompt_tokens: int
    completion_tokens: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer (finmaas returns one per request, ``index`` 0), or one streamed piece of it."""

    text: str | None = None
    """The message content (chat) or the text (completions); in a chunk, the new text."""
    finish_reason: FinishReason | None = None
    tool_calls: bytes | None = None
    logprobs: bytes | None = None
    role: bool = False
    """Chunks only: say ``"role": "assistant"`` in this delta (the first chunk does)."""


def sse_event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def encode_chat_completion(
    id: str, created: int, model: str, choices: Sequence[Choice], usage: Usage
) -> bytes:
    return orjson.dumps(
        {
            "id": id,
            "object": CHAT_OBJECT,
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": index,
                    "message": _message(choice),
                    "logprobs": _raw(choice.logprobs),
                    "finish_reason": choice.finish_reason or "stop",
                }
                for index, choice in enumerate(choices)
            ],
            "usage": usage.as_json(),
        }
    )


def encode_chat_chunk(id: str, created: int, model: str, choice: Choice) -> bytes:
    """One ``data:`` event of a streamed chat completion."""
    delta: dict[str, Any] = {}
    if choice.role:
        delta["role"] = "assistant"
    if choice.text is not None:
        delta["content"] = choice.text
    if choice.tool_calls is not None:
        delta["tool_calls"] = orjson.Fragment(choice.tool_calls)
    return sse_event(
        orjson.dumps(
            {
                "id": id,
                "object": CHUNK_OBJECT,
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": _raw(choice.logprobs),
                        "finish_reason": choice.finish_reason,
                    }
                ],
            }
        )
    )


def encode_completion(
    id: str, created: int, model: str, choices: Sequence[Choice], usage: Usage
) -> bytes:
    return orjson.dumps(
        {
            "id": id,
            "object": COMPLETION_OBJECT,
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": index,
                    "text": choice.text or "",
                    "logprobs": _raw(choice.logprobs),
                    "finish_reason": choice.finish_reason or "stop",
                }
                for index, choice in enumerate(choices)
            ],
            "usage": usage.as_json(),
        }
    )


def encode_completion_chunk(id: str, created: int, model: str, choice: Choice) -> bytes:
    """One ``data:`` event of a streamed completion."""
    return sse_event(
        orjson.dumps(
            {
                "id": id,
                "object": COMPLETION_OBJECT,
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "text": choice.text or "",
                        "logprobs": _raw(choice.logprobs),
                        "finish_reason": choice.finish_reason,
                    }
                ],
            }
        )
    )


def encode_usage_chunk(
    id: str, created: int, model: str, usage: Usage, *, chat: bool = True
) -> bytes:
    """The last event before ``[DONE]`` under ``include_usage``: no choices, the usage."""
    return sse_event(
        orjson.dumps(
            {
                "id": id,
                "object": CHUNK_OBJECT if chat else COMPLETION_OBJECT,
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage.as_json(),
            }
        )
    )


def encode_embeddings(
    model: str,
    vectors: np.ndarray | Sequence[Sequence[float]],
    prompt_tokens: int,
    encoding_format: str = "float",
) -> bytes:
    """``vectors``: one row per input, in input order. ``base64`` is the little-endian
    float32 bytes of each row, as OpenAI sends (and its SDK asks for by default)."""
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got {rows.ndim} dimensions")
    if encoding_format == "base64":
        embedded: list[Any] = [
            base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode("ascii")
            for row in rows
        ]
    else:
        embedded = list(rows)
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": embedding}
                for index, embedding in enumerate(embedded)
            ],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _message(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.text}
    if choice.tool_calls is not None:
        message["tool_calls"] = orjson.Fragment(choice.tool_calls)
    return message


def _raw(value: bytes | None) -> orjson.Fragment | None:
    return None if value is None else orjson.Fragment(value)
