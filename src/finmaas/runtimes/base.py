"""The runtime contract: an artifact in a known format becomes a ``Predictor``.

Constructors only store what they are given; ``load(data)`` parses the
(already digest-verified) bytes. ``predict`` takes the signature's encoded
array (see :mod:`finmaas.schema.encoding`) and returns float64 scores:

* ``binary``: shape ``(n,)``, probability of the positive class (``classes[1]``);
* ``regression``: shape ``(n,)``, the predicted value;
* ``multiclass``: shape ``(n, k)``, one probability per class, in ``classes`` order.

Library exceptions never leave a runtime: they become :class:`PredictorFailed`
or :class:`SchemaMismatch` (see :func:`runtime_errors`). The helpers at the end
(:func:`require_loaded`, :func:`to_scores`, :func:`check_class_count`…) are
what every runtime module uses to keep this contract the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from finmaas.errors import FinmaasError, PredictorFailed, SchemaMismatch

# Re-exported: every runtime module names its format from here.
from finmaas.runtimes.formats import SAFE_FORMATS as SAFE_FORMATS
from finmaas.runtimes.formats import ModelFormat as ModelFormat
from finmaas.schema.signature import ModelSignature

T = TypeVar("T")


@dataclass(frozen=True)
class PredictorInfo:
    format: ModelFormat
    n_features: int
    """Number of columns the model reads, checked against the signature on load."""
    library: str
    """Runtime library and version, e.g. ``lightgbm 4.5.0``."""


@runtime_checkable
class Predictor(Protocol):
    """A loaded model version, safe to call from several threads at once.

    Before ``load``, ``predict`` and ``info`` raise ``PredictorFailed("model is
    not loaded")``; on Python 3.11 ``isinstance(p, Predictor)`` reads ``info``,
    so check it after ``load``.
    """

    signature: ModelSignature

    def load(self, data: bytes) -> None:
        """Parse the artifact bytes; raise ``PredictorFailed`` or ``SchemaMismatch``."""

    @property
    def info(self) -> PredictorInfo:
        """Format, feature count and library; only valid after ``load``."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Score an encoded ``(n, n_features)`` array; see the module docstring."""


@runtime_checkable
class ContributionPredictor(Protocol):
    """A runtime that computes exact per-feature contributions itself (TreeSHAP)."""

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_features + 1)`` contributions in the raw margin (log-odds for binary
        classifiers), the last column the expected value; each row sums to the margin."""


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


def check_class_count(signature: ModelSignature, n_classes: int | None, fmt: ModelFormat) -> None:
    """Check a classifier's class count (``None``: not a classifier, or unknown) on load."""
    if n_classes is None:
        return
    if signature.task == "regression":
        raise SchemaMismatch(
            f"the signature is for regression but the {fmt} model has {n_classes} classes"
        )
    expected = len(signature.classes or ())
    if n_classes != expected:
        raise SchemaMismatch(
            f"the signature has {expected} classes but the {fmt} model has {n_classes}"
        )


def require_loaded(state: T | None) -> T:
    """Return a runtime's loaded state, or raise if ``load`` has not succeeded yet."""
    if state is None:
        raise PredictorFailed("model is not loaded")
    return state


def empty_scores(signature: ModelSignature) -> np.ndarray:
    """Scores for a batch of zero rows, without calling the library."""
    if signature.task == "multiclass":
        return np.empty((0, len(signature.classes or ())), dtype=np.float64)
    return np.empty((0,), dtype=np.float64)


def to_scores(raw: object, signature: ModelSignature, fmt: ModelFormat, rows: int) -> np.ndarray:
    """Shape a library's output into the contract's float64 scores (see the module docstring).

    Binary accepts ``(n,)``, ``(n, 1)`` or ``(n, 2)`` (then column 1 is the
    positive class); regression ``(n,)`` or ``(n, 1)``; multiclass ``(n, k)``.
    """
    scores = np.asarray(raw, dtype=np.float64)
    shape = scores.shape
    if signature.task == "multiclass":
        k = len(signature.classes or ())
        if scores.ndim == 2 and shape == (rows, k):
            return scores
        needed = f"({rows}, {k})"
    else:
        if shape == (rows,):
            return scores
        if scores.ndim == 2 and shape[0] == rows:
            if shape[1] == 1:
                return scores.reshape(rows)
            if shape[1] == 2 and signature.task == "binary":
                return np.ascontiguousarray(scores[:, 1])
        needed = f"({rows},) or ({rows}, 2)" if signature.task == "binary" else f"({rows},)"
    raise PredictorFailed(
        f"the {fmt} model returned scores of shape {shape}, "
        f"but a {signature.task} signature needs {needed}"
    )


def as_float_array(x: np.ndarray) -> np.ndarray:
    """Pass float32/float64 through unchanged (libraries read both), cast anything else."""
    if x.dtype == np.float64 or x.dtype == np.float32:
        return x
    return x.astype(np.float64)


class LoadedState(Protocol):
    @property
    def info(self) -> PredictorInfo: ...


S = TypeVar("S", bound=LoadedState)


class RuntimeBase(Generic[S]):
    """What every runtime shares: ``info`` and the checks around ``predict``.

    A runtime sets ``self._loaded`` in ``load`` and implements ``_score`` for a
    checked, non-empty batch.
    """

    signature: ModelSignature
    _loaded: S | None

    @property
    def info(self) -> PredictorInfo:
        return require_loaded(self._loaded).info

    def predict(self, x: np.ndarray) -> np.ndarray:
        loaded = require_loaded(self._loaded)
        check_input(x, loaded.info.n_features)
        if x.shape[0] == 0:
            return empty_scores(self.signature)
        return self._score(loaded, x)

    def _score(self, loaded: S, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError
