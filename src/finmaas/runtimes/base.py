"""The runtime contract: an artifact in a known format becomes a ``Predictor``.

Constructors only store what they are given; ``load(data)`` parses the
(already digest-verified) bytes. ``predict`` takes the signature's encoded
array (see :mod:`finmaas.schema.encoding`) and returns float64 scores:

* ``binary``: shape ``(n,)``, probability of the positive class (``classes[1]``);
* ``regression``: shape ``(n,)``, the predicted value;
* ``multiclass``: shape ``(n, k)``, one probability per class, in ``classes`` order.

Library exceptions never leave a runtime: they become :class:`PredictorFailed`
or :class:`SchemaMismatch` (see :func:`runtime_errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from finmaas.errors import FinmaasError, PredictorFailed, SchemaMismatch
from finmaas.schema.signature import ModelSignature


class ModelFormat(StrEnum):
    ONNX = "onnx"
    LIGHTGBM = "lightgbm"
    XGBOOST_JSON = "xgboost-json"
    XGBOOST_UBJ = "xgboost-ubj"
    SKOPS = "skops"
    PICKLE = "pickle"
    """Python pickle or joblib: executes code on load; admins only, explicitly allowed."""


SAFE_FORMATS = tuple(f for f in ModelFormat if f is not ModelFormat.PICKLE)


@dataclass(frozen=True)
class PredictorInfo:
    format: ModelFormat
    n_features: int
    """Number of columns the model reads, checked against the signature on load."""
    library: str
    """Runtime library and version, e.g. ``lightgbm 4.5.0``."""


@runtime_checkable
class Predictor(Protocol):
    """A loaded model version, safe to call from several threads at once."""

    signature: ModelSignature

    def load(self, data: bytes) -> None:
        """Parse the artifact bytes; raise ``PredictorFailed`` or ``SchemaMismatch``."""

    @property
    def info(self) -> PredictorInfo:
        """Format, feature count and library; only valid after ``load``."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Score an encoded ``(n, n_features)`` array; see the module docstring."""


@contextlib.contextmanager
def runtime_errors(what: str) -> Iterator[None]:
    """Translate any library exception raised inside into ``PredictorFailed``."""
    try:
        yield
    except FinmaasError:
        raise
    except Exception as exc:  # every runtime library has its own exception tree
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PredictorFailed(f"{what}: {detail[:300]}") from exc


def check_input(x: np.ndarray, n_features: int) -> None:
    if x.ndim != 2:
        raise SchemaMismatch(f"expected a 2-D array of shape (rows, {n_features}), got {x.ndim}-D")
    if x.shape[1] != n_features:
        raise SchemaMismatch(f"expected {n_features} features per row, got {x.shape[1]}")


def check_feature_count(signature: ModelSignature, n_features: int, fmt: ModelFormat) -> None:
    expected = len(signature.inputs)
    if n_features != expected:
        raise SchemaMismatch(
            f"the signature has {expected} inputs but the {fmt} model reads {n_features} features"
        )
