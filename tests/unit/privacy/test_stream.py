"""The streaming restorer: placeholders split anywhere come back whole, and nothing but a
possible partial placeholder is ever held."""

from __future__ import annotations

import random

import pytest

from finmaas.privacy import PrivacyPolicy, StreamRestorer

VALUES = {
    "<CARD_1>": "4111 1111 1111 1111",
    "<EMAIL_1>": "jane@example.com",
    "<EMAIL_12>": "ops@example.com",
    "<SSN_1>": "123-45-6789",
}
ANSWER = (
    "Your card <CARD_1> is linked to <EMAIL_1>; a < b and <b>bold</b>, "
    "<EMAIL_12> is the team, <FOO_1> is made up, <SSN_1>."
)
EXPECTED = (
    "Your card 4111 1111 1111 1111 is linked to jane@example.com; a < b and <b>bold</b>, "
    "ops@example.com is the team, <FOO_1> is made up, 123-45-6789."
)


def _stream(chunks: list[str], values: dict[str, str] = VALUES) -> str:
    restorer = StreamRestorer(values)
    return "".join(restorer.feed(chunk) for chunk in chunks) + restorer.flush()


def test_whole_answer_in_one_chunk() -> None:
    assert _stream([ANSWER]) == EXPECTED


def test_every_split_into_two_chunks() -> None:
    for cut in range(len(ANSWER) + 1):
        assert _stream([ANSWER[:cut], ANSWER[cut:]]) == EXPECTED, cut


def test_a_placeholder_split_at_every_pair_of_positions() -> None:
    text = "x <CARD_1> y"
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            chunks = [text[:first], text[first:second], text[second:]]
            assert _stream(chunks) == "x 4111 1111 1111 1111 y", (first, second)


def test_random_chunkings_and_one_character_chunks() -> None:
    rng = random.Random(22)
    assert _stream(list(ANSWER)) == EXPECTED
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(ANSWER)), rng.randint(1, 20)))
        chunks = [ANSWER[i:j] for i, j in zip([0, *cuts], [*cuts, len(ANSWER)], strict=True)]
        assert _stream(chunks) == EXPECTED


def test_only_a_possible_partial_placeholder_is_held() -> None:
    restorer = StreamRestorer(VALUES)
    assert restorer.feed("Card <CA") == "Card "
    assert restorer.feed("RD_1> ok") == "4111 1111 1111 1111 ok"
    assert restorer.feed("a <b") == "a <b"  # no placeholder starts "<b"
    assert restorer.feed("x <") == "x "
    assert restorer.feed("3") == "<3"
    assert restorer.feed("<EMAIL_1") == ""  # could still be <EMAIL_12>
    assert restorer.feed(">") == "jane@example.com"
    assert restorer.feed("<CARD_2>") == "<CARD_2>"  # not one of this request's
    assert restorer.feed("end <SSN_") == "end "
    assert restorer.flush() == "<SSN_"
    assert restorer.flush() == ""


@pytest.mark.parametrize("chunk", ["plain text", "a < b", "<", "<CARD_1>"])
def test_with_nothing_masked_every_chunk_passes_at_once(chunk: str) -> None:
    restorer = StreamRestorer({})
    assert restorer.feed(chunk) == chunk
    assert restorer.flush() == ""


def test_restorer_from_a_request_matches_restore() -> None:
    request = PrivacyPolicy("mask").begin()
    masked = request.protect_text("mail jane@example.com or call +44 20 7946 0958")
    restorer = request.restorer()
    streamed = "".join(restorer.feed(char) for char in masked) + restorer.flush()
    assert streamed == request.restore(masked) == "mail jane@example.com or call +44 20 7946 0958"
