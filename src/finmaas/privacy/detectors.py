"""Detectors of personal data in text: card numbers, IBANs, e-mail addresses, phone numbers.

Each detector is a regular expression that proposes candidates and a check that keeps
only the ones that are what they claim: a card number passes Luhn and starts like a
card of a known network, an IBAN has its country's length and passes mod-97, a phone
number has a plausible number of digits. They lean towards missing an odd spelling
rather than flagging an amount, a date, a sort code or a reference (docs/privacy.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

CARD = "CARD"
IBAN = "IBAN"
EMAIL = "EMAIL"
PHONE = "PHONE"
BUILT_IN_KINDS = (CARD, IBAN, EMAIL, PHONE)
"""The kinds found without configuration, in the order messages name them."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One value found in a text: its kind, where it is, and a key that is equal for two
    spellings of the same value (``4111 1111 1111 1111`` and ``4111111111111111``)."""

    kind: str
    start: int
    end: int
    key: str


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
"""IBAN length per country, from the SWIFT IBAN registry (release 101)."""

_CURRENCY = r"(?:[$€£¥₣₹]|\b(?:EUR|USD|GBP|CHF|JPY|CAD|AUD|SEK|NOK|DKK|PLN|CZK|HUF|CNY|INR)\b)"
_CURRENCY_BEFORE = re.compile(_CURRENCY + r"\s?$")
_CURRENCY_AFTER = re.compile(r"^\s?" + _CURRENCY)

# A digit run with single spaces or dashes between digits, not glued to a word, a sign,
# or a decimal part: 4111 1111 1111 1111, 4111-1111-1111-1111, 4111111111111111.
_CARD_RE = re.compile(r"\d(?<![\w+]\d)(?<!\d[.,]\d)(?:[ -]?\d){12,18}(?!\w)(?![.,]\d)")
_IBAN_START_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?= ?[A-Za-z0-9])")
_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])(?!\.\w)"
)
_NOT_BEFORE_NUMBER = r"(?<![\w$€£¥+.,/#:=-])"
_NOT_AFTER_NUMBER = r"(?!\w)(?![.,/:-]?\d)(?!\s?%)"
_PHONE_RE = re.compile(
    _NOT_BEFORE_NUMBER
    + r"(?:(?P<international>\+[1-9]\d{0,2}(?:[ .-]?\(0?\d{1,5}\))?(?:[ .-]?\d{1,6}){1,6})"
    # a trunk 0 and at least one separator: 020 7946 0958, (020) 7946 0958
    + r"|(?P<national>(?:\(0\d{1,5}\)|0\d{1,5})(?:[ -]\d{2,8}){1,4})"
    # North American: (415) 555-1234, 415-555-1234, 415.555.1234
    + r"|(?P<nanp>(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}))"
    + _NOT_AFTER_NUMBER
)
_PHONE_DIGITS = {"international": (8, 15), "national": (10, 12), "nanp": (10, 10)}
# Where a card or a phone number can be: a digit run with separators, at least 8 long.
# Scanning for it first is cheap (it starts with a digit), so the detailed expressions
# run only on these few stretches of a text.
_NUMBERISH_RE = re.compile(r"\d[\d ().-]{6,}\d")
_REFERENCE_LABEL_RE = re.compile(
    r"\b(?:order|ref|reference|invoice|inv|case|ticket|transaction|txn|trade|account|acct|"
    r"a/c|batch|loan|contract|policy|isin|cusip|sedol|id)\.?(?:\s*(?:no\.?|number|#|:)){0,2}\s*$",
    re.IGNORECASE,
)
_DATE_START_RE = re.compile(r"^\(?(\d{1,2})\)?[ -](\d{1,2})[ -](?:19|20)\d\d(?!\d)")
_NON_DIGIT_RE = re.compile(r"\D")
_NON_ALNUM_RE = re.compile(r"[^A-Za-z0-9]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of card numbers: ``digits`` holds only digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_network_length_ok(digits: str) -> bool:
    """Whether ``digits`` starts like a card of a known network, at a length it issues."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if 300 <= six // 1000 <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= n <= 19
    if 2200 <= four <= 2204:  # Mir
        return 16 <= n <= 19
    if four == 6011 or two == 65 or 644 <= six // 1000 <= 649 or two == 62:
        return 16 <= n <= 19  # Discover, UnionPay
    if two in (50, 56, 57, 58, 63, 67, 68, 69):  # Maestro
        return 13 <= n <= 19
    return False


def _card_grouping_ok(text: str) -> bool:
    """Unbroken, or grouped as cards are printed: fours (the last group shorter), or
    4-6-5 / 4-6-4 (American Express, Diners), with one kind of separator."""
    separators = {char for char in text if not char.isdigit()}
    if not separators:
        return True
    if len(separators) > 1:
        return False
    groups = [len(group) for group in text.split(separators.pop())]
    if groups[:2] == [4, 6] and len(groups) == 3:
        return groups[2] in (4, 5)
    return all(size == 4 for size in groups[:-1]) and 1 <= groups[-1] <= 4


def _numberish(text: str) -> Iterator[tuple[int, int]]:
    """Bounds to search a card or a phone number in: each digit run, with the two
    characters before it (``+(``) and three after it (what the lookaheads read)."""
    size = len(text)
    for match in _NUMBERISH_RE.finditer(text):
        yield max(0, match.start() - 2), min(size, match.end() + 3)


def _after_reference_label(text: str, start: int) -> bool:
    """Whether a number follows a label that makes it a reference (``Order``,
    ``Transaction reference``, ``Account no.``), not a card or a phone number."""
    return _REFERENCE_LABEL_RE.search(text, max(0, start - 24), start) is not None


def _next_to_currency(text: str, start: int, end: int) -> bool:
    return bool(
        _CURRENCY_BEFORE.search(text, max(0, start - 5), start)
        or _CURRENCY_AFTER.match(text[end : end + 5])
    )


def find_cards(text: str) -> Iterator[Finding]:
    """Payment card numbers: 13 to 19 digits, Luhn-valid, of a known network's range and
    length, unbroken or in the printed grouping, not next to a currency."""
    for match in (m for bounds in _numberish(text) for m in _CARD_RE.finditer(text, *bounds)):
        span = match.group()
        if _after_reference_label(text, match.start()):
            continue
        # A run that fails as a whole may still start with a card: 4111 1111 1111 1111 12
        cuts = [len(span)] + [i for i in range(len(span) - 1, 12, -1) if not span[i].isdigit()]
        for cut in cuts:
            candidate = span[:cut]
            digits = _NON_DIGIT_RE.sub("", candidate)
            if (
                13 <= len(digits) <= 19
                and _card_grouping_ok(candidate)
                and _card_network_length_ok(digits)
                and luhn_valid(digits)
                and not _next_to_currency(text, match.start(), match.start() + cut)
            ):
                yield Finding(CARD, match.start(), match.start() + cut, digits)
                break


def iban_valid(compact: str) -> bool:
    """Whether ``compact`` (upper-case, no spaces) has its country's length and passes
    the ISO 13616 mod-97 check."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def find_ibans(text: str) -> Iterator[Finding]:
    """IBANs of the registry's countries, unbroken or with single spaces, mod-97-valid."""
    for match in _IBAN_START_RE.finditer(text):
        length = IBAN_LENGTHS.get(match.group()[:2].upper())
        if length is None:
            continue
        # Take exactly the country's length of letters and digits, allowing one space
        # between any two; the value must end at a word boundary.
        chars = 0
        end = match.start()
        while end < len(text) and chars < length:
            char = text[end]
            if char.isascii() and char.isalnum():
                chars += 1
            elif not (char == " " and chars >= 4 and end + 1 < len(text) and text[end + 1] != " "):
                break
            end += 1
        if chars != length or (end < len(text) and text[end].isalnum()):
            continue
        compact = _NON_ALNUM_RE.sub("", text[match.start() : end]).upper()
        if iban_valid(compact):
            yield Finding(IBAN, match.start(), end, compact)


def find_emails(text: str) -> Iterator[Finding]:
    """E-mail addresses: a local part, ``@``, and a domain with a top-level label."""
    # Search only around each "@": scanning a whole text costs more than finding them.
    position = text.find("@")
    searched_to = 0
    while position != -1:
        if position >= searched_to:
            start = max(searched_to, position - 64)  # a local part is at most 64 characters
            end = min(len(text), position + 260)  # a domain at most 253
            match = _EMAIL_RE.search(text, start, end)
            while match is not None and match.end() <= position:
                match = _EMAIL_RE.search(text, match.end(), end)
            if match is not None and match.start() <= position:
                yield Finding(EMAIL, match.start(), match.end(), match.group().lower())
                searched_to = match.end()
        position = text.find("@", position + 1)


def _looks_like_date(span: str) -> bool:
    match = _DATE_START_RE.match(span)
    if match is None:
        return False
    first, second = int(match.group(1)), int(match.group(2))
    return (1 <= first <= 31 and 1 <= second <= 12) or (1 <= first <= 12 and 1 <= second <= 31)


def find_phones(text: str) -> Iterator[Finding]:
    """Phone numbers: international (``+44 20 7946 0958``, 8 to 15 digits), national with
    a trunk 0 and a separator (``020 7946 0958``, 10 to 12 digits), North American
    (``(415) 555-1234``). An unbroken national digit run is left alone: it reads like an
    account number."""
    for bounds in _numberish(text):
        for match in _PHONE_RE.finditer(text, *bounds):
            form = match.lastgroup or ""
            span = match.group()
            digits = _NON_DIGIT_RE.sub("", span)
            low, high = _PHONE_DIGITS[form]
            if (
                not low <= len(digits) <= high
                or _after_reference_label(text, match.start())
                or _next_to_currency(text, *match.span())
                or (form == "national" and _looks_like_date(span))
            ):
                continue
            key = ("+" if form == "international" else "") + digits
            yield Finding(PHONE, match.start(), match.end(), key)
