"""HTTP status of each finmaas error, for the data-plane protocols (looked up along the MRO)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from finmaas.errors import (
    ArtifactCorrupted,
    Conflict,
    FinmaasError,
    Forbidden,
    Invalid,
    NotFound,
    PredictorFailed,
    Unavailable,
)
from finmaas.serving.http import BodyTooLarge, UnsupportedMediaType

STATUS: Mapping[type[FinmaasError], int] = MappingProxyType(
    {
        BodyTooLarge: 413,
        UnsupportedMediaType: 415,
        Invalid: 400,
        NotFound: 404,
        Forbidden: 403,
        Conflict: 409,
        Unavailable: 503,
        ArtifactCorrupted: 500,
        PredictorFailed: 500,
        FinmaasError: 500,
    }
)


def status_of(error: FinmaasError) -> int:
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500
