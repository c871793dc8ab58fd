"""Privacy: personal data found in prompts, masked, restored or blocked per model policy."""

from finmaas.privacy.detectors import (
    BUILT_IN_KINDS,
    Finding,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
    iban_valid,
    luhn_valid,
)
from finmaas.privacy.patterns import NamedPattern, parse_pattern, parse_patterns
from finmaas.privacy.policy import MODES, PrivacyPolicy, RequestPrivacy, describe_counts
from finmaas.privacy.stream import PLACEHOLDER_RE, StreamRestorer, restore_text

__all__ = [
    "BUILT_IN_KINDS",
    "MODES",
    "PLACEHOLDER_RE",
    "Finding",
    "NamedPattern",
    "PrivacyPolicy",
    "RequestPrivacy",
    "StreamRestorer",
    "describe_counts",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_phones",
    "iban_valid",
    "luhn_valid",
    "parse_pattern",
    "parse_patterns",
    "restore_text",
]
