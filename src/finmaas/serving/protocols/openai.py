"""OpenAI request bodies: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``.

Each ``parse_*`` turns a body into an immutable request (named tuples: they cost a
fraction of a frozen dataclass to build), one rule per field
(:mod:`.openai_fields`); a field finmaas does not know is refused by name, never
ignored. Refusals are :class:`InvalidParam` with OpenAI's ``param``; they become
OpenAI-shaped errors in :func:`.openai_errors.openai_error`. Responses are built by
:mod:`.openai_responses`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from finmaas.serving.protocols import openai_fields as f
from finmaas.serving.protocols.openai_fields import InvalidParam, ModelRef, json_type
from finmaas.web.http import parse_json

MAX_MESSAGES = 1024
MAX_CONTENT_PARTS = 64
MAX_TEXT_CHARS = 1_000_000
"""The longest text of one message, prompt or input."""
MAX_TOTAL_CHARS = 4_000_000
"""All texts of one request together."""
MAX_NAME_CHARS = 64
MAX_TOOL_CALL_ID_CHARS = 256
MAX_TOP_LOGPROBS = 20
MAX_COMPLETION_LOGPROBS = 5
MAX_PROMPTS = 256
MAX_INPUTS = 2048
"""OpenAI's bound on the inputs of one embeddings request."""
MAX_DIMENSIONS = 65_536

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
ENCODING_FORMATS = frozenset({"float", "base64"})
_SAMPLING_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "user",
        "stream",
        "stream_options",
        "n",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
    }
)
CHAT_FIELDS = _SAMPLING_FIELDS | {
    "messages",
    "max_completion_tokens",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "top_logprobs",
}
COMPLETION_FIELDS = _SAMPLING_FIELDS | {"prompt"}
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
TEXT_PART_FIELDS = frozenset({"type", "text"})


class Sampling(NamedTuple):
    """What chat completions and completions share: how to generate, and how to answer."""

    max_tokens: int | None = None
    """``max_completion_tokens`` (chat) or ``max_tokens``; None: the engine's default."""
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    include_usage: bool = False
    """``stream_options.include_usage``: a last chunk with ``usage`` and no choices."""
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class ChatMessage(NamedTuple):
    role: str
    content: str | tuple[str, ...] | None
    """A string, the texts of a list of ``text`` parts, or None (an assistant's tool call)."""
    name: str | None = None
    tool_calls: bytes | None = None
    """An assistant's ``tool_calls``, passed through as JSON."""
    tool_call_id: str | None = None


class ChatRequest(NamedTuple):
    model: ModelRef
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    logprobs: bool = False
    top_logprobs: int | None = None
    response_format: bytes | None = None
    tools: bytes | None = None
    tool_choice: bytes | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(NamedTuple):
    model: ModelRef
    prompt: tuple[str, ...]
    sampling: Sampling
    logprobs: int | None = None


class EmbeddingRequest(NamedTuple):
    model: ModelRef
    input: tuple[str, ...]
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None


def parse_chat_request(body: bytes) -> ChatRequest:
    document = _object(body)
    f.reject_unknown(document, CHAT_FIELDS)
    model = f.model_ref(document.get("model"))
    messages = _messages(document.get("messages"))
    logprobs = bool(f.boolean("logprobs", document.get("logprobs")))
    top_logprobs = f.bounded_int("top_logprobs", document.get("top_logprobs"), 0, MAX_TOP_LOGPROBS)
    if top_logprobs is not None and not logprobs:
        raise InvalidParam("'top_logprobs' needs 'logprobs': true", "top_logprobs")
    tools = f.opaque("tools", document.get("tools"), (list,))
    tool_choice = f.opaque("tool_choice", document.get("tool_choice"), (str, dict))
    if tool_choice is not None and tools is None and tool_choice != b'"none"':
        raise InvalidParam("'tool_choice' is only allowed when 'tools' are given", "tool_choice")
    return ChatRequest(
        model,
        messages,
        _sampling(document, chat=True),
        logprobs,
        top_logprobs,
        f.opaque("response_format", document.get("response_format"), (dict,)),
        tools,
        tool_choice,
        f.boolean("parallel_tool_calls", document.get("parallel_tool_calls")),
    )


def parse_completion_request(body: bytes) -> CompletionRequest:
    document = _object(body)
    f.reject_unknown(document, COMPLETION_FIELDS)
    model = f.model_ref(document.get("model"))
    prompt = _texts("prompt", document.get("prompt"), MAX_PROMPTS, allow_empty=True)
    logprobs = f.bounded_int("logprobs", document.get("logprobs"), 0, MAX_COMPLETION_LOGPROBS)
    return CompletionRequest(model, prompt, _sampling(document, chat=False), logprobs)


def parse_embedding_request(body: bytes) -> EmbeddingRequest:
    document = _object(body)
    f.reject_unknown(document, EMBEDDING_FIELDS)
    model = f.model_ref(document.get("model"))
    texts = _texts("input", document.get("input"), MAX_INPUTS, allow_empty=False)
    encoding = document.get("encoding_format")
    if encoding is None:
        encoding = "float"
    elif encoding not in ENCODING_FORMATS or type(encoding) is not str:
        raise InvalidParam(
            f"'encoding_format' must be 'float' or 'base64', got {_show(encoding)}",
            "encoding_format",
        )
    dimensions = f.positive_int("dimensions", document.get("dimensions"), MAX_DIMENSIONS)
    return EmbeddingRequest(model, texts, encoding, dimensions, f.user(document.get("user")))


def _object(body: bytes) -> dict[str, Any]:
    document = parse_json(body)
    if type(document) is not dict:
        raise InvalidParam(f"request body must be a JSON object, got {json_type(document)}", None)
    return document


def _sampling(document: dict[str, Any], *, chat: bool) -> Sampling:
    stream = bool(f.boolean("stream", document.get("stream")))
    f.n_choices(document.get("n"))
    return Sampling(
        max_tokens=f.max_tokens(document, chat=chat),
        temperature=f.number("temperature", document.get("temperature"), 0, 2),
        top_p=f.number("top_p", document.get("top_p"), 0, 1),
        stop=f.stop(document.get("stop")),
        seed=f.bounded_int("seed", document.get("seed"), f.INT64_MIN, f.INT64_MAX),
        user=f.user(document.get("user")),
        stream=stream,
        include_usage=f.stream_options(document.get("stream_options"), stream),
        frequency_penalty=f.number("frequency_penalty", document.get("frequency_penalty"), -2, 2),
        presence_penalty=f.number("presence_penalty", document.get("presence_penalty"), -2, 2),
    )


def _messages(value: Any) -> tuple[ChatMessage, ...]:
    if value is None:
        raise InvalidParam("'messages' is required: a list of messages", "messages")
    if type(value) is not list or not 0 < len(value) <= MAX_MESSAGES:
        raise InvalidParam(
            f"'messages' must be a list of 1 to {MAX_MESSAGES} messages, got "
            + (f"{len(value)}" if type(value) is list else json_type(value)),
            "messages",
        )
    total = 0
    messages = []
    for index, raw in enumerate(value):
        message = _message(raw, f"messages[{index}]")
        content = message.content
        total += len(content) if type(content) is str else sum(map(len, content or ()))
        messages.append(message)
    if total > MAX_TOTAL_CHARS:
        raise InvalidParam(
            f"'messages' hold {total} characters of text; the limit is {MAX_TOTAL_CHARS}",
            "messages",
        )
    return tuple(messages)


def _message(raw: Any, where: str) -> ChatMessage:
    if type(raw) is not dict:
        raise InvalidParam(f"'{where}' must be an object, got {json_type(raw)}", where)
    if not MESSAGE_FIELDS.issuperset(raw):
        unknown = sorted(key for key in raw if key not in MESSAGE_FIELDS)[0][:64]
        raise InvalidParam(
            f"unknown field {unknown!r} in '{where}'; allowed: {', '.join(sorted(MESSAGE_FIELDS))}",
            f"{where}.{unknown}",
        )
    role = raw.get("role")
    if type(role) is not str or role not in ROLES:
        raise InvalidParam(
            f"'{where}.role' must be one of {', '.join(sorted(ROLES))}, got {_show(role)}",
            f"{where}.role",
        )
    name = raw.get("name")
    if name is not None and (type(name) is not str or not 0 < len(name) <= MAX_NAME_CHARS):
        raise InvalidParam(
            f"'{where}.name' must be a string of 1 to {MAX_NAME_CHARS} characters",
            f"{where}.name",
        )
    tool_calls = raw.get("tool_calls")
    if tool_calls is not None and role != "assistant":
        raise InvalidParam(
            f"'{where}.tool_calls' is only allowed in an assistant message", f"{where}.tool_calls"
        )
    calls = f.opaque(f"{where}.tool_calls", tool_calls, (list,))
    call_id = raw.get("tool_call_id")
    if role == "tool":
        if type(call_id) is not str or not 0 < len(call_id) <= MAX_TOOL_CALL_ID_CHARS:
            raise InvalidParam(
                f"'{where}.tool_call_id' is required in a tool message: "
                f"a string of 1 to {MAX_TOOL_CALL_ID_CHARS} characters",
                f"{where}.tool_call_id",
            )
    elif call_id is not None:
        raise InvalidParam(
            f"'{where}.tool_call_id' is only allowed in a tool message", f"{where}.tool_call_id"
        )
    content = raw.get("content")
    if content is None and not (role == "assistant" and calls is not None):
        raise InvalidParam(
            f"'{where}.content' is required "
            "(only an assistant message with 'tool_calls' may omit it)",
            f"{where}.content",
        )
    return ChatMessage(role, _content(content, f"{where}.content"), name, calls, call_id)


def _content(value: Any, where: str) -> str | tuple[str, ...] | None:
    if value is None:
        return None
    if type(value) is str:
        if len(value) > MAX_TEXT_CHARS:
            raise InvalidParam(_too_long(where, len(value)), where)
        return value
    if type(value) is not list or not 0 < len(value) <= MAX_CONTENT_PARTS:
        raise InvalidParam(
            f"'{where}' must be a string or a list of 1 to {MAX_CONTENT_PARTS} text parts, got "
            + (f"{len(value)} parts" if type(value) is list else json_type(value)),
            where,
        )
    texts = []
    for index, part in enumerate(value):
        at = f"{where}[{index}]"
        if type(part) is not dict or part.get("type") != "text":
            kind = part.get("type") if type(part) is dict else None
            raise InvalidParam(
                f'\'{at}\' must be a text part {{"type": "text", "text": …}}'
                + (f"; parts of type {_show(kind)} are not supported" if kind is not None else ""),
                at,
            )
        if not TEXT_PART_FIELDS.issuperset(part):
            unknown = sorted(key for key in part if key not in TEXT_PART_FIELDS)[0][:64]
            raise InvalidParam(f"unknown field {unknown!r} in '{at}'; allowed: text, type", at)
        text = part.get("text")
        if type(text) is not str:
            raise InvalidParam(f"'{at}.text' must be a string, got {json_type(text)}", f"{at}.text")
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidParam(_too_long(f"{at}.text", len(text)), f"{at}.text")
        texts.append(text)
    return tuple(texts)


def _texts(name: str, value: Any, limit: int, *, allow_empty: bool) -> tuple[str, ...]:
    """``prompt`` or ``input``: a string or a list of strings; token ids are refused."""
    if value is None:
        raise InvalidParam(f"'{name}' is required: a string or a list of strings", name)
    texts = [value] if type(value) is str else value
    if type(texts) is not list or not 0 < len(texts) <= limit:
        raise InvalidParam(
            f"'{name}' must be a string or a list of 1 to {limit} strings, got "
            + (f"{len(texts)} strings" if type(texts) is list else json_type(value)),
            name,
        )
    total = 0
    for index, text in enumerate(texts):
        if type(text) is not str:
            if type(text) is int or (type(text) is list and all(type(t) is int for t in text)):
                raise InvalidParam(
                    f"'{name}' as token ids is not supported; send text "
                    "(a string or a list of strings)",
                    name,
                )
            raise InvalidParam(f"'{name}[{index}]' must be a string, got {json_type(text)}", name)
        if not text and not allow_empty:
            raise InvalidParam(f"'{name}[{index}]' is empty; send non-empty text", name)
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidParam(_too_long(f"{name}[{index}]", len(text)), name)
        total += len(text)
    if total > MAX_TOTAL_CHARS:
        raise InvalidParam(
            f"'{name}' holds {total} characters of text; the limit is {MAX_TOTAL_CHARS}", name
        )
    return tuple(texts)


def _too_long(where: str, length: int) -> str:
    return f"'{where}' is {length} characters; the limit is {MAX_TEXT_CHARS}"


def _show(value: Any) -> str:
    return repr(value[:40]) if type(value) is str else json_type(value)
