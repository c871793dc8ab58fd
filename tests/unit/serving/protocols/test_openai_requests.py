"""OpenAI request bodies: every field's valid values, and every refusal with its exact
message and ``param``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from finmaas.errors import Invalid
from finmaas.serving.protocols.openai import (
    ChatMessage,
    Sampling,
    parse_chat_request,
    parse_completion_request,
    parse_embedding_request,
)
from finmaas.serving.protocols.openai_fields import InvalidParam, ModelRef

USER = {"role": "user", "content": "hi"}


def chat(**fields: Any) -> bytes:
    return orjson.dumps({"model": "m", "messages": [USER], **fields})


def completion(**fields: Any) -> bytes:
    return orjson.dumps({"model": "m", "prompt": "p", **fields})


def embedding(**fields: Any) -> bytes:
    return orjson.dumps({"model": "m", "input": "t", **fields})


def test_a_minimal_chat_body_takes_the_defaults() -> None:
    request = parse_chat_request(chat())
    assert request.model == ModelRef("m", asked="m")
    assert request.messages == (ChatMessage("user", "hi"),)
    assert request.sampling == Sampling()
    assert (request.logprobs, request.tools, request.response_format) == (False, None, None)


def test_every_chat_field_is_read() -> None:
    tools = [{"type": "function", "function": {"name": "rate", "parameters": {}}}]
    request = parse_chat_request(
        chat(
            model="credit-assistant@staging",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": "rules", "name": "ops"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ],
            max_completion_tokens=64,
            temperature=0,
            top_p=1,
            stop=["\n", "END"],
            seed=-(2**63),
            user="team-a",
            stream=True,
            stream_options={"include_usage": True},
            n=1,
            frequency_penalty=-2,
            presence_penalty=2.0,
            logprobs=True,
            top_logprobs=20,
            response_format={"type": "json_object"},
            tools=tools,
            tool_choice="auto",
            parallel_tool_calls=False,
        )
    )
    assert request.model == ModelRef(
        "credit-assistant", alias="staging", asked="credit-assistant@staging"
    )
    assert request.messages[1] == ChatMessage("developer", "rules", name="ops")
    assert request.messages[2].content == ("a", "b")
    assert request.messages[3] == ChatMessage("assistant", None, tool_calls=b'[{"id":"c1"}]')
    assert request.messages[4].tool_call_id == "c1"
    assert request.sampling == Sampling(
        max_tokens=64,
        temperature=0.0,
        top_p=1.0,
        stop=("\n", "END"),
        seed=-(2**63),
        user="team-a",
        stream=True,
        include_usage=True,
        frequency_penalty=-2.0,
        presence_penalty=2.0,
    )
    assert (request.logprobs, request.top_logprobs) == (True, 20)
    assert request.response_format == b'{"type":"json_object"}'
    assert request.tools == orjson.dumps(tools)
    assert request.tool_choice == b'"auto"'
    assert request.parallel_tool_calls is False


def test_null_is_the_same_as_absent() -> None:
    request = parse_chat_request(
        chat(temperature=None, max_tokens=None, stop=None, n=None, stream=None, user=None)
    )
    assert request.sampling == Sampling()


@pytest.mark.parametrize(
    ("model", "ref"),
    [
        ("m", ModelRef("m", asked="m")),
        ("credit-pd@3", ModelRef("credit-pd", version=3, asked="credit-pd@3")),
        (
            "credit-pd@production",
            ModelRef("credit-pd", alias="production", asked="credit-pd@production"),
        ),
    ],
)
def test_model_is_name_alias_or_version(model: str, ref: ModelRef) -> None:
    assert parse_chat_request(chat(model=model)).model == ref
    assert parse_embedding_request(embedding(model=model)).model == ref


@pytest.mark.parametrize(
    ("fields", "tokens"),
    [
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 20}, 20),
        ({"max_tokens": 30, "max_completion_tokens": 30}, 30),
        ({}, None),
    ],
)
def test_max_completion_tokens_and_its_deprecated_name(
    fields: dict[str, int], tokens: int | None
) -> None:
    assert parse_chat_request(chat(**fields)).sampling.max_tokens == tokens


def test_stop_as_one_string() -> None:
    assert parse_chat_request(chat(stop="END")).sampling.stop == ("END",)


def test_a_completion_body() -> None:
    request = parse_completion_request(
        completion(model="m@2", prompt=["a", ""], max_tokens=5, logprobs=5, stream=True)
    )
    assert request.model == ModelRef("m", version=2, asked="m@2")
    assert request.prompt == ("a", "")
    assert request.sampling == Sampling(max_tokens=5, stream=True)
    assert request.logprobs == 5
    assert parse_completion_request(completion()).prompt == ("p",)


def test_an_embeddings_body() -> None:
    request = parse_embedding_request(
        embedding(input=["a", "b"], encoding_format="base64", dimensions=256, user="u")
    )
    assert (request.input, request.encoding_format, request.dimensions, request.user) == (
        ("a", "b"),
        "base64",
        256,
        "u",
    )
    assert parse_embedding_request(embedding()).encoding_format == "float"


BAD_CHAT: list[tuple[bytes, str | None, str]] = [
    (b"", None, "request body is empty; expected JSON"),
    (b"[1]", None, "request body must be a JSON object, got an array"),
    (b'"x"', None, "request body must be a JSON object, got a string"),
    (
        chat(best_of=2),
        "best_of",
        "unknown field 'best_of' in the request body; allowed: frequency_penalty, logprobs, "
        "max_completion_tokens, max_tokens, messages, model, n, parallel_tool_calls, "
        "presence_penalty, response_format, seed, stop, stream, stream_options, temperature, "
        "tool_choice, tools, top_logprobs, top_p, user",
    ),
    (
        orjson.dumps({"messages": [USER]}),
        "model",
        "'model' is required: NAME, NAME@alias or NAME@VERSION",
    ),
    (
        chat(model=3),
        "model",
        "'model' must be a string (NAME, NAME@alias or NAME@VERSION), got a number",
    ),
    (chat(model=""), "model", "'model': model name must not be empty"),
    (
        chat(model="Credit"),
        "model",
        "'model': model name 'Credit' contains 'C'; use lowercase letters, digits, '.', '_' and '-'",
    ),
    (chat(model="m@"), "model", "'model': alias must not be empty"),
    (
        chat(model="m@Prod"),
        "model",
        "'model': alias 'Prod' must start with a lowercase letter and contain only "
        "lowercase letters, digits and '-'",
    ),
    (chat(model="m@0"), "model", "'model': version must be a positive integer, got '0'"),
    (
        chat(model="m@99999999999"),
        "model",
        "'model': version must be a positive integer, got '99999999999'",
    ),
    (chat(model="m" * 65), "model", "'model': model name must be at most 64 characters, got 65"),
    (orjson.dumps({"model": "m"}), "messages", "'messages' is required: a list of messages"),
    (chat(messages=[]), "messages", "'messages' must be a list of 1 to 1024 messages, got 0"),
    (
        chat(messages="hi"),
        "messages",
        "'messages' must be a list of 1 to 1024 messages, got a string",
    ),
    (
        chat(messages=[USER] * 1025),
        "messages",
        "'messages' must be a list of 1 to 1024 messages, got 1025",
    ),
    (chat(messages=["hi"]), "messages[0]", "'messages[0]' must be an object, got a string"),
    (
        chat(messages=[{"role": "user", "content": "x", "audio": {}}]),
        "messages[0].audio",
        "unknown field 'audio' in 'messages[0]'; allowed: content, name, role, tool_call_id, tool_calls",
    ),
    (
        chat(messages=[{"role": "function", "content": "x"}]),
        "messages[0].role",
        "'messages[0].role' must be one of assistant, developer, system, tool, user, got 'function'",
    ),
    (
        chat(messages=[{"content": "x"}]),
        "messages[0].role",
        "'messages[0].role' must be one of assistant, developer, system, tool, user, got null",
    ),
    (
        chat(messages=[{"role": "user"}]),
        "messages[0].content",
        "'messages[0].content' is required (only an assistant message with 'tool_calls' may omit it)",
    ),
    (
        chat(messages=[{"role": "user", "content": 5}]),
        "messages[0].content",
        "'messages[0].content' must be a string or a list of 1 to 64 text parts, got a number",
    ),
    (
        chat(messages=[{"role": "user", "content": []}]),
        "messages[0].content",
        "'messages[0].content' must be a string or a list of 1 to 64 text parts, got 0 parts",
    ),
    (
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
        "messages[0].content[0]",
        '\'messages[0].content[0]\' must be a text part {"type": "text", "text": …}; '
        "parts of type 'image_url' are not supported",
    ),
    (
        chat(messages=[{"role": "user", "content": ["hi"]}]),
        "messages[0].content[0]",
        '\'messages[0].content[0]\' must be a text part {"type": "text", "text": …}',
    ),
    (
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
        "messages[0].content[0].text",
        "'messages[0].content[0].text' must be a string, got a number",
    ),
    (
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}]),
        "messages[0].content[0]",
        "unknown field 'x' in 'messages[0].content[0]'; allowed: text, type",
    ),
    (
        chat(messages=[{"role": "user", "content": "x" * 1_000_001}]),
        "messages[0].content",
        "'messages[0].content' is 1000001 characters; the limit is 1000000",
    ),
    (
        chat(messages=[{"role": "user", "content": "x" * 1_000_000}] * 5),
        "messages",
        "'messages' hold 5000000 characters of text; the limit is 4000000",
    ),
    (
        chat(messages=[{"role": "user", "content": "x", "name": ""}]),
        "messages[0].name",
        "'messages[0].name' must be a string of 1 to 64 characters",
    ),
    (
        chat(messages=[{"role": "user", "content": "x", "tool_calls": []}]),
        "messages[0].tool_calls",
        "'messages[0].tool_calls' is only allowed in an assistant message",
    ),
    (
        chat(messages=[{"role": "assistant", "content": None, "tool_calls": {}}]),
        "messages[0].tool_calls",
        "'messages[0].tool_calls' must be an array, got an object",
    ),
    (
        chat(messages=[{"role": "tool", "content": "x"}]),
        "messages[0].tool_call_id",
        "'messages[0].tool_call_id' is required in a tool message: a string of 1 to 256 characters",
    ),
    (
        chat(messages=[{"role": "user", "content": "x", "tool_call_id": "c"}]),
        "messages[0].tool_call_id",
        "'messages[0].tool_call_id' is only allowed in a tool message",
    ),
    (chat(max_tokens=0), "max_tokens", "'max_tokens' must be an integer from 1 to 1048576, got 0"),
    (
        chat(max_tokens=1.5),
        "max_tokens",
        "'max_tokens' must be an integer from 1 to 1048576, got 1.5",
    ),
    (
        chat(max_tokens=True),
        "max_tokens",
        "'max_tokens' must be an integer from 1 to 1048576, got a boolean",
    ),
    (
        chat(max_completion_tokens=1_048_577),
        "max_completion_tokens",
        "'max_completion_tokens' must be an integer from 1 to 1048576, got 1048577",
    ),
    (
        chat(max_tokens=10, max_completion_tokens=20),
        "max_tokens",
        "'max_tokens' (10) and 'max_completion_tokens' (20) differ; send only "
        "'max_completion_tokens' ('max_tokens' is its deprecated name)",
    ),
    (chat(temperature=2.5), "temperature", "'temperature' must be a number from 0 to 2, got 2.5"),
    (chat(temperature=-1), "temperature", "'temperature' must be a number from 0 to 2, got -1"),
    (
        chat(temperature="1"),
        "temperature",
        "'temperature' must be a number from 0 to 2, got a string",
    ),
    (chat(top_p=1.1), "top_p", "'top_p' must be a number from 0 to 1, got 1.1"),
    (
        chat(frequency_penalty=-3),
        "frequency_penalty",
        "'frequency_penalty' must be a number from -2 to 2, got -3",
    ),
    (
        chat(presence_penalty=False),
        "presence_penalty",
        "'presence_penalty' must be a number from -2 to 2, got a boolean",
    ),
    (
        chat(stop=["a", "b", "c", "d", "e"]),
        "stop",
        "'stop' must be a string or a list of 1 to 4 strings, each 1 to 256 characters",
    ),
    (
        chat(stop=[]),
        "stop",
        "'stop' must be a string or a list of 1 to 4 strings, each 1 to 256 characters",
    ),
    (
        chat(stop=[""]),
        "stop",
        "'stop' must be a string or a list of 1 to 4 strings, each 1 to 256 characters",
    ),
    (
        chat(stop=5),
        "stop",
        "'stop' must be a string or a list of 1 to 4 strings, each 1 to 256 characters",
    ),
    (
        chat(seed=2**63),
        "seed",
        "'seed' must be an integer from -9223372036854775808 to 9223372036854775807, "
        "got 9223372036854775808",
    ),
    (
        chat(user="u" * 257),
        "user",
        "'user' must be a string of at most 256 characters, got 257 characters",
    ),
    (chat(user=7), "user", "'user' must be a string of at most 256 characters, got a number"),
    (chat(stream="yes"), "stream", "'stream' must be true or false, got a string"),
    (
        chat(stream_options={"include_usage": True}),
        "stream_options",
        "'stream_options' is only allowed when 'stream' is true",
    ),
    (
        chat(stream=False, stream_options={"include_usage": True}),
        "stream_options",
        "'stream_options' is only allowed when 'stream' is true",
    ),
    (
        chat(stream=True, stream_options=[]),
        "stream_options",
        "'stream_options' must be an object, got an array",
    ),
    (
        chat(stream=True, stream_options={"continuous_usage_stats": True}),
        "stream_options",
        "unknown field 'continuous_usage_stats' in 'stream_options'; allowed: include_usage",
    ),
    (
        chat(stream=True, stream_options={"include_usage": 1}),
        "stream_options.include_usage",
        "'stream_options.include_usage' must be true or false, got a number",
    ),
    (
        chat(n=2),
        "n",
        "'n' must be 1, got 2: finmaas returns one choice per request; "
        "send separate requests for more answers",
    ),
    (chat(n=0), "n", "'n' must be 1, got 0"),
    (chat(n="1"), "n", "'n' must be 1, got a string"),
    (chat(logprobs=1), "logprobs", "'logprobs' must be true or false, got a number"),
    (chat(top_logprobs=2), "top_logprobs", "'top_logprobs' needs 'logprobs': true"),
    (
        chat(logprobs=True, top_logprobs=21),
        "top_logprobs",
        "'top_logprobs' must be an integer from 0 to 20, got 21",
    ),
    (
        chat(response_format="json"),
        "response_format",
        "'response_format' must be an object, got a string",
    ),
    (
        chat(response_format={"type": "json_schema", "schema": "x" * 70_000}),
        "response_format",
        "'response_format' is 70034 bytes of JSON; the limit is 65536",
    ),
    (chat(tools={}), "tools", "'tools' must be an array, got an object"),
    (
        chat(tool_choice=1),
        "tool_choice",
        "'tool_choice' must be a string or an object, got a number",
    ),
    (
        chat(tool_choice="auto"),
        "tool_choice",
        "'tool_choice' is only allowed when 'tools' are given",
    ),
    (
        chat(parallel_tool_calls="no"),
        "parallel_tool_calls",
        "'parallel_tool_calls' must be true or false, got a string",
    ),
    (
        b'{"model": "m", "messages": [',
        None,
        "malformed JSON: unexpected end of data: line 1 column 29 (char 28)",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), BAD_CHAT)
def test_a_bad_chat_body_is_refused_naming_the_field(
    body: bytes, param: str | None, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        parse_chat_request(body)
    assert str(caught.value) == message
    assert getattr(caught.value, "param", None) == param


BAD_COMPLETION: list[tuple[bytes, str | None, str]] = [
    (
        completion(max_completion_tokens=5),
        "max_completion_tokens",
        "unknown field 'max_completion_tokens' in the request body; allowed: frequency_penalty, "
        "logprobs, max_tokens, model, n, presence_penalty, prompt, seed, stop, stream, "
        "stream_options, temperature, top_p, user",
    ),
    (orjson.dumps({"model": "m"}), "prompt", "'prompt' is required: a string or a list of strings"),
    (
        completion(prompt=[]),
        "prompt",
        "'prompt' must be a string or a list of 1 to 256 strings, got 0 strings",
    ),
    (
        completion(prompt={"a": 1}),
        "prompt",
        "'prompt' must be a string or a list of 1 to 256 strings, got an object",
    ),
    (
        completion(prompt=[1, 2, 3]),
        "prompt",
        "'prompt' as token ids is not supported; send text (a string or a list of strings)",
    ),
    (
        completion(prompt=[[1, 2], [3]]),
        "prompt",
        "'prompt' as token ids is not supported; send text (a string or a list of strings)",
    ),
    (completion(prompt=["a", None]), "prompt", "'prompt[1]' must be a string, got null"),
    (
        completion(prompt="x" * 1_000_001),
        "prompt",
        "'prompt[0]' is 1000001 characters; the limit is 1000000",
    ),
    (
        completion(prompt=["x" * 1_000_000] * 5),
        "prompt",
        "'prompt' holds 5000000 characters of text; the limit is 4000000",
    ),
    (
        completion(logprobs=True),
        "logprobs",
        "'logprobs' must be an integer from 0 to 5, got a boolean",
    ),
    (completion(logprobs=6), "logprobs", "'logprobs' must be an integer from 0 to 5, got 6"),
    (
        completion(n=3),
        "n",
        "'n' must be 1, got 3: finmaas returns one choice per request; send separate requests for more answers",
    ),
    (
        completion(stream_options={"include_usage": True}),
        "stream_options",
        "'stream_options' is only allowed when 'stream' is true",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), BAD_COMPLETION)
def test_a_bad_completion_body_is_refused_naming_the_field(
    body: bytes, param: str | None, message: str
) -> None:
    with pytest.raises(InvalidParam) as caught:
        parse_completion_request(body)
    assert (str(caught.value), caught.value.param) == (message, param)


BAD_EMBEDDING: list[tuple[bytes, str | None, str]] = [
    (
        embedding(stream=True),
        "stream",
        "unknown field 'stream' in the request body; allowed: dimensions, encoding_format, "
        "input, model, user",
    ),
    (
        orjson.dumps({"input": "t"}),
        "model",
        "'model' is required: NAME, NAME@alias or NAME@VERSION",
    ),
    (orjson.dumps({"model": "m"}), "input", "'input' is required: a string or a list of strings"),
    (embedding(input=""), "input", "'input[0]' is empty; send non-empty text"),
    (embedding(input=["a", ""]), "input", "'input[1]' is empty; send non-empty text"),
    (
        embedding(input=[5]),
        "input",
        "'input' as token ids is not supported; send text (a string or a list of strings)",
    ),
    (
        embedding(input=["a"] * 2049),
        "input",
        "'input' must be a string or a list of 1 to 2048 strings, got 2049 strings",
    ),
    (
        embedding(encoding_format="int8"),
        "encoding_format",
        "'encoding_format' must be 'float' or 'base64', got 'int8'",
    ),
    (
        embedding(encoding_format=1),
        "encoding_format",
        "'encoding_format' must be 'float' or 'base64', got a number",
    ),
    (
        embedding(dimensions=0),
        "dimensions",
        "'dimensions' must be an integer from 1 to 65536, got 0",
    ),
    (
        embedding(dimensions="8"),
        "dimensions",
        "'dimensions' must be an integer from 1 to 65536, got a string",
    ),
    (embedding(user=[]), "user", "'user' must be a string of at most 256 characters, got an array"),
    (b"null", None, "request body must be a JSON object, got null"),
]


@pytest.mark.parametrize(("body", "param", "message"), BAD_EMBEDDING)
def test_a_bad_embeddings_body_is_refused_naming_the_field(
    body: bytes, param: str | None, message: str
) -> None:
    with pytest.raises(InvalidParam) as caught:
        parse_embedding_request(body)
    assert (str(caught.value), caught.value.param) == (message, param)


def test_requests_are_immutable() -> None:
    request = parse_chat_request(chat())
    with pytest.raises(AttributeError):
        request.model = ModelRef("other")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        request.model.name = "other"  # type: ignore[misc]
