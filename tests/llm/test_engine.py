"""llama-cpp-python's OpenAI-compatible server on the tiny model is a real upstream for
the LLM gateway: the official ``openai`` SDK chats with it, streamed and not, a seed makes
sampling repeatable, and ``usage`` is consistent.

Some tests pin down what the engine does *not* do, so that a change in a new release is
noticed: streamed chunks carry no ``usage``, even when ``stream_options.include_usage``
asks for it, so the gateway must count the streamed tokens itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.llm.engine import MODEL_ID, LlamaServer
from tests.llm.tiny_gguf import BOS_ID, IM_START_ID

openai = pytest.importorskip("openai")

MESSAGES = [
    {"role": "system", "content": "You answer questions about loans."},
    {"role": "user", "content": "What is the credit risk of this account?"},
]


@pytest.fixture
def client(llama_server: LlamaServer) -> Iterator[openai.OpenAI]:
    with llama_server.openai() as sdk:
        yield sdk


def test_the_model_list_names_the_alias(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [MODEL_ID]


def test_a_chat_completion_has_text_and_consistent_usage(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL_ID, messages=MESSAGES, max_tokens=8, temperature=0
    )
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    # The tiny model never generates an end token: it always runs to max_tokens.
    assert choice.finish_reason == "length"
    usage = answer.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_chat_template_from_the_file_formats_the_prompt(
    client: openai.OpenAI, llama_server: LlamaServer
) -> None:
    """prompt_tokens is the file's ChatML rendering of the messages, tokenized, and
    nothing else: the chat path adds no BOS token of its own (a template that wants one
    says ``{{ bos_token }}``), whereas ``/extras/tokenize`` adds it."""
    rendered = (
        "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)
        + "<|im_start|>assistant\n"
    )
    tokenized = httpx.post(
        f"{llama_server.url}/extras/tokenize", json={"input": rendered}, timeout=30
    )
    tokenized.raise_for_status()
    tokens = tokenized.json()["tokens"]
    assert tokens[0] == BOS_ID
    assert tokens.count(IM_START_ID) == len(MESSAGES) + 1  # special tokens, not text
    answer = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=1)
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == len(tokens) - 1


def test_a_streamed_chat_is_the_same_text_in_chunks(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model=MODEL_ID, messages=MESSAGES, max_tokens=12, temperature=0
    )
    stream = client.chat.completions.create(
        model=MODEL_ID, messages=MESSAGES, max_tokens=12, temperature=0, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 2
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_completion_with_a_seed_is_repeatable(client: openai.OpenAI) -> None:
    def complete(seed: int) -> openai.types.Completion:
        return client.completions.create(
            model=MODEL_ID, prompt="The loan rate is", max_tokens=5, temperature=0.9, seed=seed
        )

    first, again, other = complete(42), complete(42), complete(43)
    assert first.choices[0].text == again.choices[0].text
    assert first.choices[0].text != other.choices[0].text  # the seed is what repeats it
    for answer in (first, again, other):
        assert answer.usage is not None
        assert answer.usage.prompt_tokens > 0
        assert 0 < answer.usage.completion_tokens <= 5


@pytest.mark.parametrize("kind", ["chat", "completion"])
def test_streamed_chunks_carry_no_usage_even_when_asked(client: openai.OpenAI, kind: str) -> None:
    """OpenAI sends a last chunk with ``usage`` when ``include_usage`` is set; this engine
    ignores the option, so the gateway counts streamed tokens itself. If this fails, the
    engine learned to send it: the gateway may then use the engine's count."""
    common = {"model": MODEL_ID, "max_tokens": 6, "stream": True}
    options = {"stream_options": {"include_usage": True}}
    if kind == "chat":
        stream = client.chat.completions.create(messages=MESSAGES, **common, **options)
    else:
        stream = client.completions.create(prompt="The bank", **common, **options)
    chunks = list(stream)
    assert chunks
    assert all(chunk.usage is None for chunk in chunks)


def test_embeddings_from_the_mean_pooled_model(embedding_server: LlamaServer) -> None:
    with embedding_server.openai() as sdk:
        answer = sdk.embeddings.create(
            model="tiny-embedder", input=["credit risk", "loan payment", "credit risk"]
        )
    vectors = [item.embedding for item in answer.data]
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert {len(vector) for vector in vectors} == {64}
    # The same text gives the same vector, up to float rounding: inputs share a batch.
    assert vectors[0] == pytest.approx(vectors[2], rel=1e-5, abs=1e-6)
    assert vectors[0] != pytest.approx(vectors[1], rel=1e-2)
    assert answer.usage.prompt_tokens > 0
