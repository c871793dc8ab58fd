"""Read a runtime's options (``threads``, ``output``…) from a plain mapping.

Options come from deployment settings, so a wrong name or value is an
:class:`~finmaas.errors.Invalid` that names the option and the rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from finmaas.errors import Invalid
from finmaas.runtimes.base import ModelFormat


def check_option_names(
    options: Mapping[str, object], known: Collection[str], fmt: ModelFormat
) -> None:
    unknown = sorted(name for name in options if name not in known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise Invalid(f"unknown option {unknown[0]!r} for the {fmt} runtime (known: {allowed})")


def int_option(options: Mapping[str, object], name: str, default: int, *, minimum: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(f"option {name!r} must be an integer ≥ {minimum}, got {value!r}")
    return value


def str_option(options: Mapping[str, object], name: str) -> str | None:
    value = options.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise Invalid(f"option {name!r} must be a non-empty string, got {value!r}")
    return value
