"""finmaas: self-hosted Model-as-a-Service for financial institutions.

The public names are imported on first use (PEP 562), so that importing any
``finmaas.*`` module does not pay for the SDK and the publishing path: a server
worker imports only what serving needs (see ``tests/unit/test_worker_imports.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finmaas.lazy import lazy_names

if TYPE_CHECKING:
    from finmaas.client import Client
    from finmaas.config import Settings
    from finmaas.errors import FinmaasError
    from finmaas.publish.registration import register

__version__ = "0.1.0"

__all__ = ["Client", "FinmaasError", "Settings", "__version__", "register"]

_HOMES = {
    "Client": "finmaas.client",
    "FinmaasError": "finmaas.errors",
    "Settings": "finmaas.config",
    "register": "finmaas.publish.registration",
}

__getattr__ = lazy_names(__name__, _HOMES)
