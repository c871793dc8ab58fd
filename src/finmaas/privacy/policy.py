"""A model's privacy policy, and what it does to one request's prompt and answer.

``pass`` sends the prompt as it is; ``mask`` replaces each value found by a typed
placeholder (``<CARD_1>``) before the prompt leaves finmaas and puts the values back
into the answer; ``block`` refuses a prompt that holds any, naming the kinds and their
counts, never a value. The values live only in the ``RequestPrivacy`` of one request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from finmaas.errors import Invalid, PersonalDataBlocked
from finmaas.privacy.detectors import (
    BUILT_IN_KINDS,
    CARD,
    EMAIL,
    IBAN,
    PHONE,
    Finding,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
)
from finmaas.privacy.patterns import NamedPattern, parse_patterns
from finmaas.privacy.stream import StreamRestorer, restore_text

logger = logging.getLogger("finmaas.privacy")

MODES = ("pass", "mask", "block")
KIND_NAMES = {
    CARD: ("card number", "card numbers"),
    IBAN: ("IBAN", "IBANs"),
    EMAIL: ("e-mail address", "e-mail addresses"),
    PHONE: ("phone number", "phone numbers"),
}
"""How a message names one or several values of a built-in kind."""

Message = Mapping[str, Any]
_T = TypeVar("_T")


@dataclass(frozen=True)
class PrivacyPolicy:
    """What a model lets leave finmaas: ``mode`` is ``pass``, ``mask`` or ``block``;
    ``patterns`` add named detectors (national ids) to the built-in ones."""

    mode: str = "pass"
    patterns: tuple[NamedPattern, ...] = ()
    _detectors: tuple[Callable[[str], Iterator[Finding]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise Invalid(f"privacy mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        detectors = (find_emails, find_ibans, find_cards)
        configured = tuple(pattern.find for pattern in self.patterns)
        object.__setattr__(self, "_detectors", (*detectors, *configured, find_phones))

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> PrivacyPolicy:
        """A policy from its stored form, ``{"mode": "mask", "patterns": [{"name": "SSN",
        "pattern": "..."}]}``; ``None`` or ``{}`` is ``pass``. ``Invalid`` names the rule."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise Invalid("a privacy policy must be an object")
        unknown = sorted(set(config) - {"mode", "patterns"})
        if unknown:
            raise Invalid(f"unknown privacy policy field {unknown[0]!r}")
        mode = config.get("mode", "pass")
        if not isinstance(mode, str):
            raise Invalid(f"privacy mode must be one of {', '.join(MODES)}, got {mode!r}")
        patterns = config.get("patterns", [])
        return cls(mode, parse_patterns(patterns))  # type: ignore[arg-type]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind this policy detects, in the order messages name them."""
        return (*BUILT_IN_KINDS, *(pattern.name for pattern in self.patterns))

    def find(self, text: str) -> list[Finding]:
        """The values in ``text``, in order, without overlaps (the earliest, then the
        longest, then the first detector wins)."""
        found = [finding for detect in self._detectors for finding in detect(text)]
        if len(found) > 1:
            found.sort(key=lambda finding: (finding.start, finding.start - finding.end))
            kept: list[Finding] = []
            for finding in found:
                if not kept or finding.start >= kept[-1].end:
                    kept.append(finding)
            return kept
        return found

    def begin(self) -> RequestPrivacy:
        """The privacy state of one request (its placeholders live as long as it)."""
        return RequestPrivacy(self)


def describe_counts(counts: Mapping[str, int], kinds: Sequence[str]) -> str:
    """``1 card number, 2 e-mail addresses``: the kinds with a count, in ``kinds`` order."""
    parts = []
    for kind in kinds:
        count = counts.get(kind, 0)
        if count:
            one, many = KIND_NAMES.get(kind, (kind, f"{kind}s"))
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


class RequestPrivacy:
    """One request under a policy: ``protect_*`` the prompt, ``restore`` the answer.

    Within one request the same value (however spaced) always gets the same
    placeholder, numbered per kind in order of appearance, across all its messages.
    """

    def __init__(self, policy: PrivacyPolicy) -> None:
        self.policy = policy
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    @property
    def values(self) -> Mapping[str, str]:
        """Placeholder → original value, for this request only (read-only)."""
        return MappingProxyType(self._values)

    def protect_text(self, text: str, *, subject: str = "prompt") -> str:
        """``text`` as the engine may see it; ``PersonalDataBlocked`` under ``block``."""
        if self.policy.mode == "block":
            self._refuse_if_found([text], subject)
        if self.policy.mode != "mask":
            return text
        return self._logged(lambda: self.mask_text(text))

    def protect_messages(
        self, messages: Sequence[Message], *, subject: str = "prompt"
    ) -> list[dict[str, Any]]:
        """Chat messages as the engine may see them: text content (a string or ``text``
        parts) and tool-call arguments masked under ``mask``, checked under ``block``;
        other fields and parts are kept as they are. The input is not changed."""
        if self.policy.mode == "block":
            self._refuse_if_found(_texts(messages), subject)
        if self.policy.mode != "mask":
            return [dict(message) for message in messages]
        return self._logged(lambda: [_map_message(message, self.mask_text) for message in messages])

    def mask_text(self, text: str) -> str:
        """``text`` with every value found replaced by its placeholder."""
        findings = self.policy.find(text)
        if not findings:
            return text
        pieces = []
        position = 0
        for finding in findings:
            pieces.append(text[position : finding.start])
            pieces.append(self._placeholder(finding, text[finding.start : finding.end]))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    def restore(self, text: str) -> str:
        """An answer with this request's placeholders replaced by their values."""
        return restore_text(text, self._values)

    def restorer(self) -> StreamRestorer:
        """A restorer for a streamed answer (take it after the prompt is protected)."""
        return StreamRestorer(dict(self._values))

    def _refuse_if_found(self, texts: Iterable[str], subject: str) -> None:
        """``PersonalDataBlocked`` naming the kinds and the number of distinct values."""
        keys: dict[str, set[str]] = {}
        for text in texts:
            for finding in self.policy.find(text):
                keys.setdefault(finding.kind, set()).add(finding.key)
        if keys:
            counts = {kind: len(values) for kind, values in keys.items()}
            summary = describe_counts(counts, self.policy.kinds)
            logger.info("privacy policy blocked a %s holding %s", subject, summary)
            raise PersonalDataBlocked(
                f"the {subject} holds personal data ({summary}); this model's policy blocks it",
                counts=counts,
            )

    def _logged(self, mask: Callable[[], _T]) -> _T:
        """``mask()``, with a debug record of the counts (never the values) it added."""
        before = len(self._values)
        masked = mask()
        if len(self._values) > before:
            summary = describe_counts(self._counts, self.policy.kinds)
            logger.debug("privacy policy masked %s", summary)
        return masked

    def _placeholder(self, finding: Finding, original: str) -> str:
        identity = (finding.kind, finding.key)
        placeholder = self._placeholders.get(identity)
        if placeholder is None:
            number = self._counts.get(finding.kind, 0) + 1
            self._counts[finding.kind] = number
            placeholder = f"<{finding.kind}_{number}>"
            self._placeholders[identity] = placeholder
            self._values[placeholder] = original
        return placeholder


def _map_message(message: Message, change: Callable[[str], str]) -> dict[str, Any]:
    new = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        new["content"] = change(content)
    elif isinstance(content, list):
        new["content"] = [
            {**part, "text": change(part["text"])} if _is_text_part(part) else part
            for part in content
        ]
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        new["tool_calls"] = [_map_tool_call(call, change) for call in tool_calls]
    return new


def _map_tool_call(call: object, change: Callable[[str], str]) -> object:
    if not isinstance(call, Mapping):
        return call
    function = call.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
        return {**call, "function": {**function, "arguments": change(function["arguments"])}}
    return call


def _is_text_part(part: object) -> bool:
    return (
        isinstance(part, Mapping)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    )


def _texts(messages: Sequence[Message]) -> list[str]:
    """Every text of ``messages`` that masking would change."""
    found: list[str] = []

    def collect(text: str) -> str:
        found.append(text)
        return text

    for message in messages:
        _map_message(message, collect)
    return found
