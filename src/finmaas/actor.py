"""Who is acting: recorded on every write, and checked where a right is needed."""

from __future__ import annotations

import getpass
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    name: str
    is_admin: bool = False


def local_actor() -> Actor:
    """The operator at this machine's shell.

    Whoever can write the finmaas home folder controls the embedded deployment,
    so the local CLI and Python helpers act as an admin named after the OS user.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"local:{user}", is_admin=True)
