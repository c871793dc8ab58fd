"""scikit-learn estimators saved with skops (``skops.io.dumps``).

skops refuses to build any type it does not trust by default. A fitted
estimator still names a few more (e.g. ``sklearn.tree._tree.Tree``), which we
trust only if each one is on our allow-list:

* a *class* defined in scikit-learn (``sklearn.…``, not in its test helpers):
  skops builds it from data without calling its constructor;
* one of :data:`EXTRA_TRUSTED_TYPES`, the few numpy/scipy/stdlib types and
  functions scikit-learn estimators hold.

Functions are never trusted by prefix: an estimator may call a stored
function (``FunctionTransformer(func=…)``) with arguments bound by
``functools.partial``, and scikit-learn's own helpers include one that runs a
Python script.

Anything else is :class:`~finmaas.errors.Forbidden`, before any object in the
file is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from finmaas.errors import Forbidden
from finmaas.runtimes._estimator import Estimator
from finmaas.runtimes._options import check_option_names
from finmaas.runtimes.base import (
    ModelFormat,
    RuntimeBase,
    require_loaded,
    runtime_errors,
)
from finmaas.schema.signature import ModelSignature

_FORMAT = ModelFormat.SKOPS

EXTRA_TRUSTED_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "functools.partial",  # only of trusted functions: the function is checked too
        "numpy.dtype",
        "scipy.interpolate._bsplines.BSpline",  # SplineTransformer
        "scipy.sparse._csc.csc_array",
        "scipy.sparse._csc.csc_matrix",
        "scipy.sparse._csr.csr_array",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.utils.validation.check_array",  # HistGradientBoosting categorical features
    }
)
"""Types and functions outside the ``sklearn.`` class rule that we trust by name."""

_UNTRUSTED_PACKAGES = frozenset({"tests", "conftest", "_testing", "estimator_checks"})


class SkopsPredictor(RuntimeBase[Estimator]):
    """Scores a skops-loaded estimator with ``predict_proba`` or ``predict``.

    Binary classifiers give column 1 of ``predict_proba`` (``classes_[1]``).
    """

    def __init__(self, signature: ModelSignature) -> None:
        self.signature = signature
        self._loaded: Estimator | None = None

    @classmethod
    def from_options(
        cls, signature: ModelSignature, options: Mapping[str, object]
    ) -> SkopsPredictor:
        check_option_names(options, (), _FORMAT)
        return cls(signature)

    def load(self, data: bytes) -> None:
        with runtime_errors("could not read the skops model"):
            import skops.io

            listed = skops.io.get_untrusted_types(data=data)
        refused = sorted(name for name in listed if not is_trusted_type(name))
        if refused:
            raise Forbidden(f"skops artifact contains untrusted types: {', '.join(refused)}")
        with runtime_errors("could not load the skops model"):
            model = skops.io.loads(data, trusted=listed)
        self._loaded = Estimator.wrap(model, self.signature, _FORMAT)

    def _score(self, loaded: Estimator, x: np.ndarray) -> np.ndarray:
        return loaded.score(x, self.signature)

    @property
    def estimator(self) -> Any:
        """The loaded scikit-learn estimator (for conversion to ONNX)."""
        return require_loaded(self._loaded).model

    @property
    def reads_raw_frame(self) -> bool:
        """Whether the estimator was fitted on a raw DataFrame (text categories) and is
        handed that frame rather than the encoded array (see :mod:`._raw_frame`)."""
        return require_loaded(self._loaded).raw_frame is not None


def is_trusted_type(name: str) -> bool:
    """Whether a type named by ``skops.io.get_untrusted_types`` is on our allow-list."""
    return name in EXTRA_TRUSTED_TYPES or _is_sklearn_class(name)


def _is_sklearn_class(name: str) -> bool:
    """A class whose defining module is ``sklearn.…`` (outside its test helpers).

    The name is resolved, as skops will, and the object must really be a class
    defined there: a module's imports (``sklearn.datasets._rcv1.remove`` is
    ``os.remove``) do not count.
    """
    module_name, _, attribute = name.rpartition(".")
    parts = module_name.split(".")
    if parts[0] != "sklearn" or len(parts) < 2 or _UNTRUSTED_PACKAGES.intersection(parts):
        return False
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception:  # no such module or attribute: not something we know
        return False
    return isinstance(found, type) and found.__module__ == module_name
