"""Named patterns a model's privacy policy adds to the built-in detectors (national ids).

A pattern is checked once, when the policy is configured: its name must be a
placeholder-safe word that is not a built-in kind, its regular expression must compile,
be at most ``MAX_PATTERN_LENGTH`` characters, match no empty string and hold no
quantified group that itself repeats (``(\\d+)+``, the shape of catastrophic
backtracking). Python's ``re`` has no time limit, so these bounds are what keeps a
pattern from stalling a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from finmaas.errors import Invalid
from finmaas.privacy.detectors import BUILT_IN_KINDS, Finding

MAX_PATTERNS = 16
MAX_PATTERN_LENGTH = 200
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,23}")
# A group holding an open quantifier, itself repeated without bound: (\d+)+, (a*)*,
# (\d+\s)+, (a|b{1,3}){2,}; a bounded repeat of a fixed group, (\d{3}\.){2}, is fine.
_NESTED_QUANTIFIER_RE = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)"
)


@dataclass(frozen=True)
class NamedPattern:
    """A configured detector: values matching ``regex`` are of kind ``name``."""

    name: str
    regex: re.Pattern[str]

    def find(self, text: str) -> Iterator[Finding]:
        for match in self.regex.finditer(text):
            if match.end() > match.start():
                yield Finding(self.name, match.start(), match.end(), match.group())


def parse_pattern(entry: object) -> NamedPattern:
    """One ``{"name": "SSN", "pattern": "..."}`` entry, checked; ``Invalid`` names the
    rule it breaks."""
    if not isinstance(entry, Mapping) or set(entry) != {"name", "pattern"}:
        raise Invalid('a privacy pattern must be an object with exactly "name" and "pattern"')
    name, source = entry["name"], entry["pattern"]
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise Invalid(
            f"privacy pattern name {name!r} must be 1 to 24 upper-case letters, digits or "
            "underscores, starting with a letter"
        )
    if name in BUILT_IN_KINDS:
        raise Invalid(f"privacy pattern name {name!r} is a built-in detector")
    if not isinstance(source, str) or not source:
        raise Invalid(f"privacy pattern {name!r} must be a non-empty string")
    if len(source) > MAX_PATTERN_LENGTH:
        raise Invalid(
            f"privacy pattern {name!r} must be at most {MAX_PATTERN_LENGTH} characters, "
            f"got {len(source)}"
        )
    try:
        regex = re.compile(source)
    except re.error as exc:
        raise Invalid(f"privacy pattern {name!r} does not compile: {exc}") from None
    if regex.fullmatch("") is not None:
        raise Invalid(f"privacy pattern {name!r} matches the empty string")
    if _NESTED_QUANTIFIER_RE.search(source):
        raise Invalid(
            f"privacy pattern {name!r} repeats a group that holds a quantifier, "
            "which can take exponential time"
        )
    return NamedPattern(name, regex)


def parse_patterns(entries: Sequence[object]) -> tuple[NamedPattern, ...]:
    """A policy's list of patterns, each checked, with distinct names, at most
    ``MAX_PATTERNS``."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise Invalid("privacy patterns must be a list")
    if len(entries) > MAX_PATTERNS:
        raise Invalid(f"a privacy policy holds at most {MAX_PATTERNS} patterns, got {len(entries)}")
    patterns = tuple(parse_pattern(entry) for entry in entries)
    names = [pattern.name for pattern in patterns]
    for name in names:
        if names.count(name) > 1:
            raise Invalid(f"privacy pattern name {name!r} is used twice")
    return patterns
