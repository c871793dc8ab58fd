"""Numbers as every protocol reads them, so one value gets one answer whatever carries it.

A number's text (a JSON literal, a CSV cell) becomes the Python value orjson
gives for it: an integer literal within the signed or unsigned 64-bit range
is an ``int``, any other number a ``float``. A number beyond the double range
(``1e400``, a 400-digit integer) becomes :class:`BeyondDouble`, an infinite
float that remembers its text, so the signature check refuses it naming the
field (``must be a finite number, got number 1e400``) instead of the parser
refusing the whole body. The rules per feature dtype are in
:class:`finmaas.schema.RecordEncoder`; docs/signatures.md lists them.
"""

from __future__ import annotations

import math
import re

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
INT64_TOP = float(2**63 - 1024)
"""The largest double an ``int`` feature encodes to: the nearest double to 2^63 - 1
(2^63) is outside the int64 range, so values above this one are encoded as it."""

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
"""JSON's number grammar (RFC 8259 §6), also used for CSV cells."""
_MAX_INTEGER_DIGITS = 20


class BeyondDouble(float):
    """±inf standing for a number literal beyond the double range; ``repr`` is its text."""

    text: str

    def __new__(cls, text: str) -> BeyondDouble:
        number = super().__new__(cls, -math.inf if text.startswith("-") else math.inf)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


def integer_literal(text: str) -> int | float:
    """An integer literal as orjson reads it: an ``int`` within 64 bits, else a float."""
    if len(text) <= _MAX_INTEGER_DIGITS:
        value = int(text)
        if INT64_MIN <= value <= UINT64_MAX:
            return value
    return float_literal(text)


def float_literal(text: str) -> float:
    """A number literal as a double, or :class:`BeyondDouble` when out of its range."""
    value = float(text)
    return BeyondDouble(text) if math.isinf(value) else value


def number_from_text(text: str) -> int | float | None:
    """The number a JSON-grammar literal stands for, or None if ``text`` is not one."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    if match.group(1) is None and match.group(2) is None:
        return integer_literal(text)
    return float_literal(text)


def value_from_text(dtype: str, text: str) -> object:
    """A text cell (CSV) as the value a JSON body would carry for a feature of ``dtype``.

    An empty cell is null (a missing value, as pandas writes NaN); a number cell
    is read by :func:`number_from_text`, a bool cell is ``true`` or ``false`` in
    any case (pandas writes ``True``). Anything else stays text, so the feature's
    rule refuses it with the message a JSON string would get.
    """
    if not text:
        return None
    if dtype in ("float", "int"):
        number = number_from_text(text.strip())
        return text if number is None else number
    if dtype == "bool":
        word = text.strip().lower()
        if word in ("true", "false"):
            return word == "true"
    return text
