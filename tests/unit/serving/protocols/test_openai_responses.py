"""OpenAI errors and responses, byte for byte, and as the official ``openai`` SDK reads them
(its pydantic types, and its own HTTP client over a mock transport, streaming included)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import numpy as np
import openai
import orjson
import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from finmaas.errors import (
    ArtifactCorrupted,
    Busy,
    Conflict,
    FinmaasError,
    Forbidden,
    Invalid,
    NotFound,
    NotSupported,
    PersonalDataBlocked,
    PredictorFailed,
    QueueFull,
    RateLimited,
    Unauthenticated,
    UpstreamFailed,
    UpstreamTimeout,
)
from finmaas.serving.protocols.openai import parse_chat_request
from finmaas.serving.protocols.openai_errors import openai_error
from finmaas.serving.protocols.openai_fields import InvalidParam
from finmaas.serving.protocols.openai_responses import (
    SSE_DONE,
    Choice,
    Usage,
    encode_chat_chunk,
    encode_chat_completion,
    encode_completion,
    encode_completion_chunk,
    encode_embeddings,
    encode_usage_chunk,
)
from finmaas.web.http import BodyTooLarge, UnsupportedMediaType

ID, CREATED, MODEL = "chatcmpl-1", 1700000000, "credit-assistant@production"
USAGE = Usage(prompt_tokens=7, completion_tokens=3)


ERRORS: list[tuple[BaseException, int, str, str | None, str | None]] = [
    (Invalid("bad"), 400, "invalid_request_error", None, None),
    (InvalidParam("'n' must be 1, got 2", "n"), 400, "invalid_request_error", "n", None),
    (BodyTooLarge("big"), 413, "invalid_request_error", None, "request_too_large"),
    (UnsupportedMediaType("xml"), 415, "invalid_request_error", None, "unsupported_media_type"),
    (
        PersonalDataBlocked("card", counts={"CARD": 1}),
        400,
        "invalid_request_error",
        None,
        "personal_data_blocked",
    ),
    (Unauthenticated("no key"), 401, "invalid_request_error", None, "invalid_api_key"),
    (Forbidden("no"), 403, "permission_error", None, "permission_denied"),
    (NotFound("model 'x' not found"), 404, "invalid_request_error", "model", "model_not_found"),
    (Conflict("moved"), 409, "invalid_request_error", None, "conflict"),
    (RateLimited("slow", retry_after=7), 429, "rate_limit_error", None, "rate_limit_exceeded"),
    (
        RateLimited("tpm", retry_after=3, reason="tokens"),
        429,
        "rate_limit_error",
        None,
        "rate_limit_exceeded",
    ),
    (
        RateLimited("month", retry_after=9, reason="token_quota"),
        429,
        "insufficient_quota",
        None,
        "insufficient_quota",
    ),
    (
        RateLimited("rows", retry_after=9, reason="quota"),
        429,
        "insufficient_quota",
        None,
        "insufficient_quota",
    ),
    (PredictorFailed("boom"), 500, "server_error", None, None),
    (FinmaasError("odd"), 500, "server_error", None, None),
    (NotSupported("no"), 501, "invalid_request_error", None, "not_supported"),
    (UpstreamFailed("engine down"), 502, "server_error", None, "upstream_error"),
    (QueueFull("full"), 503, "service_unavailable_error", None, "service_unavailable"),
    (Busy("busy", retry_after=2), 503, "service_unavailable_error", None, "service_unavailable"),
    (ArtifactCorrupted("sha"), 503, "service_unavailable_error", None, "service_unavailable"),
    (UpstreamTimeout("slow engine"), 504, "server_error", None, "upstream_timeout"),
]


@pytest.mark.parametrize(
    ("exc", "status", "kind", "param", "code"), ERRORS, ids=lambda v: repr(v)[:40]
)
def test_each_error_has_its_status_type_param_and_code(
    exc: FinmaasError, status: int, kind: str, param: str | None, code: str | None
) -> None:
    response = openai_error(exc)
    assert response.status == status
    assert orjson.loads(response.body) == {
        "error": {"message": str(exc), "type": kind, "param": param, "code": code}
    }


def test_an_unexpected_exception_is_a_bare_500() -> None:
    response = openai_error(KeyError("secret detail"))
    assert (response.status, response.body, response.headers) == (
        500,
        b'{"error":{"message":"internal server error","type":"server_error","param":null,"code":null}}',
        [],
    )


def test_refusals_carry_retry_after_and_www_authenticate() -> None:
    limited = openai_error(RateLimited("slow", retry_after=7, limit=60, policy="60;w=60"))
    assert (b"retry-after", b"7") in limited.headers
    assert (b"ratelimit-policy", b"60;w=60") in limited.headers
    assert openai_error(Busy("busy", retry_after=2)).headers == [(b"retry-after", b"2")]
    assert openai_error(Unauthenticated("no key")).headers == [
        (b"www-authenticate", b'Bearer realm="finmaas"')
    ]


def test_a_chat_completion_byte_for_byte_and_as_the_sdk_reads_it() -> None:
    body = encode_chat_completion(ID, CREATED, MODEL, [Choice("Hello.", "stop")], USAGE)
    assert body == (
        b'{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,'
        b'"model":"credit-assistant@production","choices":[{"index":0,"message":'
        b'{"role":"assistant","content":"Hello."},"logprobs":null,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}'
    )
    parsed = ChatCompletion.model_validate_json(body)
    assert parsed.choices[0].message.content == "Hello."
    assert parsed.usage is not None
    assert parsed.usage.total_tokens == 10


def test_a_tool_call_answer_passes_the_engines_json_through() -> None:
    calls = b'[{"id":"c1","type":"function","function":{"name":"rate","arguments":"{}"}}]'
    body = encode_chat_completion(ID, CREATED, MODEL, [Choice(None, "tool_calls", calls)], USAGE)
    parsed = ChatCompletion.model_validate_json(body)
    assert parsed.choices[0].finish_reason == "tool_calls"
    call = parsed.choices[0].message.tool_calls
    assert call is not None
    assert call[0].id == "c1"


def test_chat_chunks_are_server_sent_events() -> None:
    first = encode_chat_chunk(ID, CREATED, MODEL, Choice("He", role=True))
    assert first == (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"credit-assistant@production","choices":[{"index":0,"delta":'
        b'{"role":"assistant","content":"He"},"logprobs":null,"finish_reason":null}]}\n\n'
    )
    last = encode_chat_chunk(ID, CREATED, MODEL, Choice(finish_reason="length"))
    usage = encode_usage_chunk(ID, CREATED, MODEL, USAGE)
    for event in (first, last, usage):
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        ChatCompletionChunk.model_validate_json(event[6:-2])
    final = ChatCompletionChunk.model_validate_json(usage[6:-2])
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.prompt_tokens == 7
    assert SSE_DONE == b"data: [DONE]\n\n"


def test_a_completion_and_its_chunks() -> None:
    body = encode_completion("cmpl-1", CREATED, "m@3", [Choice(" income", "length")], USAGE)
    assert body == (
        b'{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m@3",'
        b'"choices":[{"index":0,"text":" income","logprobs":null,"finish_reason":"length"}],'
        b'"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}'
    )
    assert Completion.model_validate_json(body).choices[0].text == " income"
    last = encode_completion_chunk("cmpl-1", CREATED, "m@3", Choice("", "stop"))
    Completion.model_validate_json(last[6:-2])
    usage = encode_usage_chunk("cmpl-1", CREATED, "m@3", USAGE, chat=False)
    assert Completion.model_validate_json(usage[6:-2]).usage is not None


def test_embeddings_as_floats_and_as_base64() -> None:
    vectors = np.array([[0.5, -1.0], [0.25, 2.0]], dtype=np.float32)
    body = encode_embeddings("encoder", vectors, prompt_tokens=4)
    assert body == (
        b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.0]},'
        b'{"object":"embedding","index":1,"embedding":[0.25,2.0]}],"model":"encoder",'
        b'"usage":{"prompt_tokens":4,"total_tokens":4}}'
    )
    parsed = CreateEmbeddingResponse.model_validate_json(body)
    assert parsed.data[1].embedding == [0.25, 2.0]
    encoded = orjson.loads(encode_embeddings("encoder", vectors, 4, "base64"))
    row = np.frombuffer(base64.b64decode(encoded["data"][1]["embedding"]), dtype="<f4")
    assert row.tolist() == [0.25, 2.0]


def _sdk(handler: Callable[[httpx.Request], httpx.Response]) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="fm_test",
        base_url="http://finmaas.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_the_sdk_streams_a_chat_with_usage_last() -> None:
    events = [
        encode_chat_chunk(ID, CREATED, MODEL, Choice("", role=True)),
        encode_chat_chunk(ID, CREATED, MODEL, Choice("Hel")),
        encode_chat_chunk(ID, CREATED, MODEL, Choice("lo.")),
        encode_chat_chunk(ID, CREATED, MODEL, Choice(finish_reason="stop")),
        encode_usage_chunk(ID, CREATED, MODEL, USAGE),
        SSE_DONE,
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        sent = parse_chat_request(request.content)
        assert sent.sampling.include_usage
        return httpx.Response(
            200, content=b"".join(events), headers={"content-type": "text/event-stream"}
        )

    chunks = list(
        _sdk(handler).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello."
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_the_sdk_reads_an_embeddings_answer_in_its_default_base64() -> None:
    vectors = np.array([[0.5, -1.0]], dtype=np.float32)

    def handler(request: httpx.Request) -> httpx.Response:
        sent = orjson.loads(request.content)
        return httpx.Response(
            200, content=encode_embeddings("encoder", vectors, 2, sent["encoding_format"])
        )

    answer = _sdk(handler).embeddings.create(model="encoder", input="text")
    assert answer.data[0].embedding == [0.5, -1.0]


def test_the_sdk_raises_its_own_error_classes_with_param_and_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            parse_chat_request(request.content)
        except Invalid as exc:
            refusal = openai_error(exc)
            return httpx.Response(refusal.status, content=refusal.body)
        raise AssertionError("the body should be refused")

    with pytest.raises(openai.BadRequestError) as caught:
        _sdk(handler).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert (caught.value.status_code, caught.value.param, caught.value.type) == (
        400,
        "n",
        "invalid_request_error",
    )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"].startswith("'n' must be 1, got 2")


@pytest.mark.parametrize(
    ("exc", "sdk_error"),
    [
        (Unauthenticated("API key was revoked"), openai.AuthenticationError),
        (Forbidden("no grant"), openai.PermissionDeniedError),
        (NotFound("model 'x' not found"), openai.NotFoundError),
        (RateLimited("slow", retry_after=1), openai.RateLimitError),
        (UpstreamFailed("engine down"), openai.InternalServerError),
    ],
)
def test_the_sdk_maps_each_status_to_its_error_class(
    exc: FinmaasError, sdk_error: type[openai.APIStatusError]
) -> None:
    refusal = openai_error(exc)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(refusal.status, content=refusal.body)

    with pytest.raises(sdk_error) as caught:
        _sdk(handler).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body == orjson.loads(refusal.body)["error"]
