"""finmaas: self-hosted Model-as-a-Service for financial institutions."""

from finmaas.client import Client
from finmaas.config import Settings
from finmaas.errors import FinmaasError
from finmaas.registration import register

__version__ = "0.1.0"

__all__ = ["Client", "FinmaasError", "Settings", "__version__", "register"]
