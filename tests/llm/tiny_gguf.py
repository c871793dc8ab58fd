"""Test helper: a tiny llama-architecture GGUF model, written by the tests themselves.

No test downloads weights (DESIGN.md, "Large models"): the LLM tests serve a model of a
few hundred kilobytes that :func:`write_tiny_llama` writes with the ``gguf`` package's
``GGUFWriter``: random float32 weights from a fixed seed, a SentencePiece-style
vocabulary small enough to read in one screen, ChatML control tokens and a ChatML chat
template, so llama.cpp loads it in milliseconds and chats with it. Its answers are
gibberish, but they are llama.cpp's real answers: real tokenisation, real sampling, real
``usage`` counts.

The same seed gives the same bytes, so a file written twice has one sha256 (what a
registry test that pushes it twice needs).

Two properties make the tests simpler to write and are built into the weights:

- **It never stops early.** Every token embedding carries a constant 1 in dimension 0
  that no layer writes to, and the output rows of the control and byte tokens are
  strongly negative in that dimension, so none of them is ever generated: a generation
  always runs to ``max_tokens`` (``finish_reason`` ``"length"``, ``completion_tokens ==
  max_tokens``), and its text is whole words and letters, never a broken UTF-8 byte.
- **It embeds.** With ``pooling="mean"`` the file says so (``llama.pooling_type``) and
  llama.cpp's ``--embedding`` mode returns one mean-pooled vector per input (such a file
  keeps plain random weights: the constant dimension would make every vector alike).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, as Qwen and many other open models ship it."""

SPACE = "\u2581"  # "▁": SentencePiece's mark for a space
CONTROL = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
UNK_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = range(len(CONTROL))
WORDS = (
    "the",
    "a",
    "bank",
    "loan",
    "credit",
    "risk",
    "model",
    "rate",
    "account",
    "payment",
    "hello",
    "yes",
    "no",
)


@dataclass(frozen=True)
class TinyShape:
    """The model's hyper-parameters: tiny, so it loads and generates fast on one core."""

    embedding: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    feed_forward: int = 128
    context: int = 2048


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """The token texts, scores and types (``gguf.TokenType`` values) of the vocabulary.

    llama.cpp's SentencePiece tokenizer needs the 256 ``<0xXX>`` byte tokens (its byte
    fallback, and how it finds the newline token) and ``▁``; without them it aborts.
    Pieces merge pairwise by score, so every word comes with each of its prefixes.
    """
    from gguf import TokenType

    tokens: list[str] = list(CONTROL)
    types: list[int] = [TokenType.UNKNOWN] + [TokenType.CONTROL] * (len(CONTROL) - 1)
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    pieces: list[str] = [SPACE]
    for char in string.ascii_letters + string.digits + string.punctuation:
        pieces += [char, SPACE + char]
    for word in WORDS:  # "▁b", "▁ba", "▁ban", "▁bank": every step of the merge exists
        pieces += [SPACE + word[:end] for end in range(2, len(word) + 1)]
    pieces = list(dict.fromkeys(pieces))  # in order, without repeats
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    # Longer pieces score higher, so merges prefer them; special tokens score 0.
    scores = [0.0] * (len(CONTROL) + 256) + [float(len(piece)) for piece in pieces]
    return tokens, scores, types


def write_tiny_llama(
    path: Path,
    *,
    seed: int = 0,
    shape: TinyShape = TinyShape(),  # frozen: one shared default is safe
    pooling: Literal["none", "mean"] = "none",
    name: str = "finmaas-tiny-llama",
) -> Path:
    """Write a tiny llama-architecture GGUF (float32, random weights from ``seed``) to
    ``path``; the same arguments give the same bytes. ``pooling="mean"`` marks it as an
    embedding model. Returns ``path``."""
    import gguf

    tokens, scores, types = vocabulary()
    rng = np.random.default_rng(seed)
    n_embd, n_ff, n_vocab = shape.embedding, shape.feed_forward, len(tokens)
    head_dim = n_embd // shape.heads
    n_embd_kv = head_dim * shape.kv_heads

    def weight(rows: int, columns: int, scale: float = 0.02) -> np.ndarray:
        # numpy's (out, in) order; GGUF stores the dimensions reversed, as llama.cpp wants
        return (rng.standard_normal((rows, columns)) * scale).astype(np.float32)

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    if pooling == "mean":
        writer.add_pooling_type(gguf.PoolingType.MEAN)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    # Dimension 0 of the residual stream is a constant 1 (set in every token embedding,
    # never written by a layer): through the output rows it acts as a per-token bias,
    # which forbids the control and byte tokens (see the module's docstring).
    # An embedding model keeps plain weights: a constant dimension would dominate its
    # vectors.
    generates = pooling == "none"
    embeddings = weight(n_vocab, n_embd)
    output = weight(n_vocab, n_embd, scale=0.5)
    if generates:
        embeddings[:, 0] = 1.0
        output[:, 0] = 0.0
        output[: len(CONTROL) + 256, 0] = -30.0
    writer.add_tensor("token_embd.weight", embeddings)
    for layer in range(shape.layers):
        attention_out = weight(n_embd, n_embd)
        down = weight(n_embd, n_ff)
        if generates:
            attention_out[0, :] = 0.0
            down[0, :] = 0.0
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones(n_embd))
        writer.add_tensor(f"{block}.attn_q.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"{block}.attn_k.weight", weight(n_embd_kv, n_embd))
        writer.add_tensor(f"{block}.attn_v.weight", weight(n_embd_kv, n_embd))
        writer.add_tensor(f"{block}.attn_output.weight", attention_out)
        writer.add_tensor(f"{block}.ffn_norm.weight", ones(n_embd))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"{block}.ffn_down.weight", down)
    writer.add_tensor("output_norm.weight", ones(n_embd))
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
