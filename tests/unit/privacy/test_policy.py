"""Policies on one request: pass, mask and restore across chat messages, block naming
kinds and counts; no value in an error or a log record."""

from __future__ import annotations

import copy
import logging

import pytest

from finmaas.errors import Invalid, PersonalDataBlocked
from finmaas.privacy import PrivacyPolicy

CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"
EMAIL = "jane.doe@example.com"
OTHER_EMAIL = "ops@bank.example"
PHONE = "+44 20 7946 0958"
SSN = "123-45-6789"
VALUES = (CARD, IBAN, EMAIL, OTHER_EMAIL, PHONE, SSN, "4111111111111111")

PATTERNS = [{"name": "SSN", "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}]

MESSAGES = [
    {"role": "system", "content": "You help with card disputes. Escalate to ops@bank.example."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": f"My card {CARD} was charged twice; mail me at {EMAIL}."},
            {"type": "image_url", "image_url": {"url": "https://example.com/receipt.png"}},
            {"type": "text", "text": f"Refund to {IBAN}, SSN {SSN}, phone {PHONE}."},
        ],
    },
    {"role": "assistant", "content": f"I will write to {EMAIL} about card 4111111111111111."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "refund", "arguments": f'{{"iban": "{IBAN}"}}'},
            }
        ],
    },
    {"role": "user", "content": "Please go ahead."},
]


def _mask_policy() -> PrivacyPolicy:
    return PrivacyPolicy.from_config({"mode": "mask", "patterns": PATTERNS})


def test_pass_sends_everything_as_it_is() -> None:
    request = PrivacyPolicy.from_config({"mode": "pass"}).begin()
    assert request.protect_messages(MESSAGES) == MESSAGES
    assert request.protect_text(f"card {CARD}") == f"card {CARD}"
    assert request.restore("<CARD_1>") == "<CARD_1>"


def test_mask_replaces_values_consistently_across_messages() -> None:
    request = _mask_policy().begin()
    original = copy.deepcopy(MESSAGES)
    masked = request.protect_messages(MESSAGES)
    assert original == MESSAGES  # the caller's messages are not changed
    assert masked == [
        {"role": "system", "content": "You help with card disputes. Escalate to <EMAIL_1>."},
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "My card <CARD_1> was charged twice; mail me at <EMAIL_2>.",
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/receipt.png"}},
                {"type": "text", "text": "Refund to <IBAN_1>, SSN <SSN_1>, phone <PHONE_1>."},
            ],
        },
        {"role": "assistant", "content": "I will write to <EMAIL_2> about card <CARD_1>."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "refund", "arguments": '{"iban": "<IBAN_1>"}'},
                }
            ],
        },
        {"role": "user", "content": "Please go ahead."},
    ]
    assert dict(request.values) == {
        "<EMAIL_1>": OTHER_EMAIL,
        "<CARD_1>": CARD,
        "<EMAIL_2>": EMAIL,
        "<IBAN_1>": IBAN,
        "<SSN_1>": SSN,
        "<PHONE_1>": PHONE,
    }


def test_mask_then_restore_round_trips_chat_messages() -> None:
    request = _mask_policy().begin()
    messages = [m for m in MESSAGES if m["role"] != "assistant"]
    masked = request.protect_messages(messages)
    restored = [
        {
            **m,
            "content": request.restore(m["content"])
            if isinstance(m["content"], str)
            else [
                {**p, "text": request.restore(p["text"])} if p["type"] == "text" else p
                for p in m["content"]
            ],
        }
        for m in masked
    ]
    assert restored == messages
    assert not any(value in str(masked) for value in VALUES)


def test_restore_puts_values_into_an_answer() -> None:
    request = _mask_policy().begin()
    request.protect_messages(MESSAGES)
    answer = "I refunded <IBAN_1> and wrote to <EMAIL_2>; <EMAIL_9> and <OTHER_1> are unknown."
    assert request.restore(answer) == (
        f"I refunded {IBAN} and wrote to {EMAIL}; <EMAIL_9> and <OTHER_1> are unknown."
    )


def test_placeholders_are_per_request() -> None:
    policy = _mask_policy()
    first, second = policy.begin(), policy.begin()
    assert first.protect_text(f"{EMAIL} {OTHER_EMAIL}") == "<EMAIL_1> <EMAIL_2>"
    assert second.protect_text(OTHER_EMAIL) == "<EMAIL_1>"
    assert second.restore("<EMAIL_1> <EMAIL_2>") == f"{OTHER_EMAIL} <EMAIL_2>"


def test_the_same_value_spelt_differently_is_one_placeholder() -> None:
    request = _mask_policy().begin()
    masked = request.protect_text(f"{CARD} / 4111-1111-1111-1111 / {EMAIL.upper()} / {EMAIL}")
    assert masked == "<CARD_1> / <CARD_1> / <EMAIL_1> / <EMAIL_1>"
    assert request.restore("<CARD_1>") == CARD  # the first spelling


def test_block_names_kinds_and_counts_exactly() -> None:
    request = PrivacyPolicy.from_config({"mode": "block", "patterns": PATTERNS}).begin()
    with pytest.raises(PersonalDataBlocked) as caught:
        request.protect_messages(MESSAGES)
    assert str(caught.value) == (
        "the prompt holds personal data (1 card number, 1 IBAN, 2 e-mail addresses, "
        "1 phone number, 1 SSN); this model's policy blocks it"
    )
    assert caught.value.counts == {"EMAIL": 2, "CARD": 1, "IBAN": 1, "SSN": 1, "PHONE": 1}
    assert isinstance(caught.value, Invalid)


def test_block_message_for_plain_text() -> None:
    request = PrivacyPolicy("block").begin()
    with pytest.raises(PersonalDataBlocked) as caught:
        request.protect_text(f"card {CARD}, mail {EMAIL} and {OTHER_EMAIL}")
    assert str(caught.value) == (
        "the prompt holds personal data (1 card number, 2 e-mail addresses); "
        "this model's policy blocks it"
    )


def test_block_lets_clean_prompts_through() -> None:
    request = PrivacyPolicy("block").begin()
    clean = [{"role": "user", "content": "Summarise: revenue rose 4.2% to EUR 1,234,567.89."}]
    assert request.protect_messages(clean) == clean


@pytest.mark.parametrize("mode", ["mask", "block"])
def test_no_value_in_any_log_record_or_error(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = PrivacyPolicy.from_config({"mode": mode, "patterns": PATTERNS}).begin()
    error = ""
    try:
        request.protect_messages(MESSAGES)
    except PersonalDataBlocked as exc:
        error = f"{exc} {exc!r} {exc.args}"
    assert caplog.records, "the policy logs what it did"
    logged = " ".join(
        f"{r.getMessage()} {r.msg} {r.args}" for r in caplog.records if r.name.startswith("finmaas")
    )
    for value in VALUES:
        assert value not in logged
        assert value not in error
        assert value.replace(" ", "") not in logged + error
