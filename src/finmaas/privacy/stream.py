"""Putting masked values back into a model's answer, whole or as it streams.

An engine streams text in chunks that can split a placeholder anywhere (``<CA`` then
``RD_1>``). The streaming restorer emits every character at once except a tail that is
still the beginning of one of this request's placeholders, which it holds until the
next chunk completes it (and it is replaced) or shows it is something else (and it is
emitted as it came).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z0-9_]*_[1-9][0-9]*>")
"""A typed placeholder: ``<CARD_1>``, ``<EMAIL_12>``, ``<NATIONAL_ID_3>``."""


def restore_text(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each of this request's placeholders replaced by its value; any other
    ``<WORD_N>`` (one the model made up) is left as it is."""
    if not values or "<" not in text:
        return text
    return PLACEHOLDER_RE.sub(lambda match: values.get(match.group(), match.group()), text)


class StreamRestorer:
    """Restores placeholders in text that arrives in chunks.

    ``feed(chunk)`` returns the text that can be emitted now; ``flush()`` returns what
    is still held when the stream ends. Only a possible partial placeholder of this
    request is ever held, so the delay is at most one placeholder's length.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self._prefixes = {
            placeholder[:i] for placeholder in values for i in range(1, len(placeholder))
        }
        self._longest = max((len(placeholder) for placeholder in values), default=0)
        self._held = ""

    def feed(self, chunk: str) -> str:
        if not self._values:
            return chunk
        text = self._held + chunk
        self._held = ""
        if "<" not in text:
            return text
        pieces: list[str] = []
        position = 0
        for match in PLACEHOLDER_RE.finditer(text):
            pieces.append(text[position : match.start()])
            pieces.append(self._values.get(match.group(), match.group()))
            position = match.end()
        tail = text[position:]
        cut = self._partial_start(tail)
        pieces.append(tail[:cut])
        self._held = tail[cut:]
        return "".join(pieces)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _partial_start(self, tail: str) -> int:
        """Where the tail's possible partial placeholder starts (``len(tail)`` if none)."""
        first = max(0, len(tail) - self._longest + 1)
        index = tail.find("<", first)
        while index != -1:
            if tail[index:] in self._prefixes:
                return index
            index = tail.find("<", index + 1)
        return len(tail)
