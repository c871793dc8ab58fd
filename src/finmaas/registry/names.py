"""Rules for model, alias and tenant names.

Names end up in URLs, file names, metric labels and logs, so they are slugs.
"""

from __future__ import annotations

import re

from finmaas.errors import Invalid, InvalidName

MAX_MODEL_NAME = 64
MAX_ALIAS_NAME = 32

_MODEL_CHARS = re.compile(r"[a-z0-9._-]")
_ALIAS = re.compile(r"[a-z][a-z0-9-]*")
_TENANT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidName`` saying why."""
    shown = _show(name)
    if not name:
        raise InvalidName("model name must not be empty")
    if len(name) > MAX_MODEL_NAME:
        raise InvalidName(
            f"model name must be at most {MAX_MODEL_NAME} characters, got {len(name)}"
        )
    for char in name:
        if not _MODEL_CHARS.fullmatch(char):
            raise InvalidName(
                f"model name {shown} contains {char!r}; "
                "use lowercase letters, digits, '.', '_' and '-'"
            )
    if not name[0].isalnum():
        raise InvalidName(f"model name {shown} must start with a letter or a digit")
    if ".." in name:
        raise InvalidName(f"model name {shown} must not contain '..'")
    return name


def check_alias_name(alias: str) -> str:
    """Return ``alias`` if it is a valid alias (a slug starting with a letter)."""
    if not alias:
        raise InvalidName("alias must not be empty")
    if len(alias) > MAX_ALIAS_NAME:
        raise InvalidName(f"alias must be at most {MAX_ALIAS_NAME} characters, got {len(alias)}")
    if not _ALIAS.fullmatch(alias):
        raise InvalidName(
            f"alias {_show(alias)} must start with a lowercase letter and contain only "
            "lowercase letters, digits and '-'"
        )
    return alias


def check_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name, else raise ``Invalid``."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise Invalid(
            f"tenant {tenant[:80]!r} must be 1-64 lowercase letters, digits, '.', '_' or '-'"
        )
    return tenant


def _show(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:79] + "…")
