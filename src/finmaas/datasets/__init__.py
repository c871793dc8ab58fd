"""Public datasets shipped inside the package (attribution in ``README.md`` next to them)."""

from finmaas.datasets.german_credit import (
    GERMAN_CREDIT_TARGET,
    german_credit_data_sha256,
    german_credit_signature,
    load_german_credit,
)

__all__ = [
    "GERMAN_CREDIT_TARGET",
    "german_credit_data_sha256",
    "german_credit_signature",
    "load_german_credit",
]
