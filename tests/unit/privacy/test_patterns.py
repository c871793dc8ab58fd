"""Configured patterns: found under their own name, refused at configuration with exact
messages when they break a rule."""

from __future__ import annotations

import pytest

from finmaas.errors import Invalid
from finmaas.privacy import PrivacyPolicy, parse_patterns

SSN = {"name": "SSN", "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}


def test_a_configured_pattern_masks_under_its_name() -> None:
    policy = PrivacyPolicy.from_config({"mode": "mask", "patterns": [SSN]})
    request = policy.begin()
    assert request.protect_text("SSN 123-45-6789 and 987-65-4321") == "SSN <SSN_1> and <SSN_2>"
    assert policy.kinds == ("CARD", "IBAN", "EMAIL", "PHONE", "SSN")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("SSN", "privacy patterns must be a list"),
        (
            [{"name": "SSN"}],
            'a privacy pattern must be an object with exactly "name" and "pattern"',
        ),
        (
            [{"name": "ssn", "pattern": "x"}],
            "privacy pattern name 'ssn' must be 1 to 24 upper-case letters, digits or "
            "underscores, starting with a letter",
        ),
        (
            [{"name": "A" * 25, "pattern": "x"}],
            f"privacy pattern name {'A' * 25!r} must be 1 to 24 upper-case letters, digits or "
            "underscores, starting with a letter",
        ),
        ([{"name": "CARD", "pattern": "x"}], "privacy pattern name 'CARD' is a built-in detector"),
        ([{"name": "SSN", "pattern": ""}], "privacy pattern 'SSN' must be a non-empty string"),
        (
            [{"name": "SSN", "pattern": "x" * 201}],
            "privacy pattern 'SSN' must be at most 200 characters, got 201",
        ),
        (
            [{"name": "SSN", "pattern": r"(\d{3}"}],
            "privacy pattern 'SSN' does not compile: missing ), unterminated subpattern at position 0",
        ),
        ([{"name": "SSN", "pattern": r"\d*"}], "privacy pattern 'SSN' matches the empty string"),
        (
            [{"name": "SSN", "pattern": r"(\d+)+-"}],
            "privacy pattern 'SSN' repeats a group that holds a quantifier, "
            "which can take exponential time",
        ),
        (
            [{"name": "SSN", "pattern": r"(?:a|b*){2,}c"}],
            "privacy pattern 'SSN' repeats a group that holds a quantifier, "
            "which can take exponential time",
        ),
        ([SSN, SSN], "privacy pattern name 'SSN' is used twice"),
        (
            [{"name": f"P{i}", "pattern": "x"} for i in range(17)],
            "a privacy policy holds at most 16 patterns, got 17",
        ),
    ],
)
def test_bad_patterns_are_refused_with_the_rule(entries: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_patterns(entries)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mode": "redact"}, "privacy mode must be one of pass, mask, block, got 'redact'"),
        ({"mode": "mask", "detectors": []}, "unknown privacy policy field 'detectors'"),
        ("mask", "a privacy policy must be an object"),
    ],
)
def test_bad_policies_are_refused(config: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        PrivacyPolicy.from_config(config)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_no_policy_is_pass() -> None:
    assert PrivacyPolicy.from_config(None).mode == "pass"
    assert PrivacyPolicy.from_config({}).mode == "pass"
