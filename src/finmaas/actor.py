"""Who is acting: recorded on every write, and checked where a right is needed."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Actor:
    """A person or program making a change.

    ``name`` is who (``local:alice``, or ``key:<id>`` for an API key), ``role``
    what it may do, ``tenant`` the team it belongs to, and ``origin`` where the
    change came from (``cli``, or the client address), for the audit trail.
    """

    name: str
    role: str = "admin"
    tenant: str = DEFAULT_TENANT
    origin: str = "local"
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def acts_for(self, tenant: str) -> bool:
        """Whether this actor may change (or approve) what ``tenant`` owns: an admin,
        or an actor of that tenant. A grant lets another tenant *use* a model, never
        change it."""
        return self.is_admin or self.tenant == tenant


def local_actor() -> Actor:
    """The operator at this machine's shell.

    Whoever can write the finmaas home folder controls the embedded deployment,
    so the local CLI and Python helpers act as an admin named after the OS user.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"local:{user}", role="admin", origin="cli")
