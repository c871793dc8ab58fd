"""Path and query parameters of control-plane routes: a version number, a date."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from finmaas.errors import Invalid


def version_number(text: str) -> int:
    """The version number in a path (1 to 2**31 - 1)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not 0 < int(text) < 2**31:
        raise Invalid(f"version must be a positive integer, got {text[:40]!r}")
    return int(text)


def query_date(query: Mapping[str, str], name: str) -> date | None:
    """The date in query parameter ``name`` (``YYYY-MM-DD``), or None when absent."""
    value = query.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"'{name}' must be a date (YYYY-MM-DD)") from None
