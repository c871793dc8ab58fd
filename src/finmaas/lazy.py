"""Names of a package imported on first use (PEP 562), one way for every package.

A package lists where each public name lives and sets its module ``__getattr__``::

    __getattr__ = lazy_names(__name__, {"Client": "finmaas.client"})

Importing the package then costs nothing of what its names need; the first use of a
name imports its module and keeps the value in the package, so later uses are plain
attribute reads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name of ``homes`` from its module."""

    def attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    return attribute
