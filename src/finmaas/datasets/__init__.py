"""Public datasets shipped inside the package (attribution in ``README.md`` next to them)."""

from finmaas.datasets.german_credit import (
    GERMAN_CREDIT_TARGET,
    german_credit_data_sha256,
    german_credit_signature,
    load_german_credit,
)
from finmaas.datasets.goog import goog_data_sha256, load_goog

__all__ = [
    "GERMAN_CREDIT_TARGET",
    "german_credit_data_sha256",
    "german_credit_signature",
    "goog_data_sha256",
    "load_german_credit",
    "load_goog",
]
