"""Resolve a credential reference (``env:VAR`` or ``file:PATH``) to the secret, where
an upstream is called, at the moment it is called.

The registry keeps the reference only; the secret lives in the environment of the
process that calls the upstream, or in a file beside it, and is only ever sent as
``Authorization: Bearer``. Messages name the reference, never the value.

This is the one place that reads a variable the settings do not name: the operator
names it, per endpoint, in the version's reference.
"""

from __future__ import annotations

import os
from pathlib import Path

from finmaas.errors import Invalid

SERVER_ENV_PREFIX = "FINMAAS_UPSTREAM_"
"""Over ``/api`` a reference may only name a variable with this prefix: a caller with
a key must not make the server send its own secrets (the database URL, …) to a URL of
the caller's choosing."""
MAX_SECRET_BYTES = 16_384


def check_server_reference(reference: str) -> None:
    """Refuse a reference a remote caller may not make the server resolve."""
    kind, _, rest = reference.partition(":")
    if kind != "env" or not rest.startswith(SERVER_ENV_PREFIX):
        raise Invalid(
            f"over /api a credential must be env:{SERVER_ENV_PREFIX}<NAME>, a variable the "
            "server's operator set for upstreams; other variables and files stay on the server "
            "(register such an endpoint with the local CLI there)"
        )


def resolve_credential(reference: str) -> str:
    """The secret ``reference`` points at; raises :class:`Invalid` naming the reference."""
    kind, _, rest = reference.partition(":")
    if kind == "env":
        value = os.environ.get(rest)
        if not value:
            raise Invalid(f"credential {reference}: the variable is not set")
        return value.strip()
    if kind == "file":
        try:
            raw = Path(rest).read_bytes()[: MAX_SECRET_BYTES + 1]
        except OSError:
            raise Invalid(f"credential {reference}: the file cannot be read") from None
        if len(raw) > MAX_SECRET_BYTES:
            raise Invalid(f"credential {reference}: the file is over {MAX_SECRET_BYTES} bytes")
        try:
            value = raw.decode().strip()
        except UnicodeDecodeError:
            raise Invalid(f"credential {reference}: the file is not UTF-8 text") from None
        if not value:
            raise Invalid(f"credential {reference}: the file is empty")
        return value
    raise Invalid("a credential must be a reference, env:VAR or file:/absolute/path")
