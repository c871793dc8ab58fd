"""finmaas: self-hosted Model-as-a-Service for financial institutions."""

from finmaas.config import Settings
from finmaas.errors import FinmaasError

__version__ = "0.1.0"

__all__ = ["FinmaasError", "Settings", "__version__"]
