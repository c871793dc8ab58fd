"""Python pickles of scikit-learn-style estimators: admins only, explicitly allowed.

Unpickling runs whatever code the file names, so ``load`` refuses before it
looks at the bytes unless the predictor was built with ``allow_pickle=True``
(an admin pushed the file with ``--allow-pickle`` *and* the deployment allows
pickle). joblib is not a dependency: a compressed joblib file, or one that
keeps numpy arrays outside the pickle stream, is refused with a way out.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import numpy as np

from finmaas.errors import Forbidden, FormatMismatch
from finmaas.runtimes._estimator import Estimator
from finmaas.runtimes._options import check_option_names
from finmaas.runtimes.base import (
    ModelFormat,
    RuntimeBase,
    runtime_errors,
)
from finmaas.runtimes.detect import is_compressed
from finmaas.schema.signature import ModelSignature

_FORMAT = ModelFormat.PICKLE

PICKLE_REFUSED = (
    "pickle artifacts execute code when loaded; refused (an admin must push it with "
    "--allow-pickle and the deployment must set allow_pickle)"
)
_RESAVE = "save the model with pickle.dump(model, file, protocol=5)"


class PicklePredictor(RuntimeBase[Estimator]):
    """Unpickles an estimator, only when allowed, and scores it like :mod:`.skops` does."""

    def __init__(self, signature: ModelSignature, *, allow_pickle: bool = False) -> None:
        self.signature = signature
        self.allow_pickle = allow_pickle
        self._loaded: Estimator | None = None

    @classmethod
    def from_options(
        cls, signature: ModelSignature, options: Mapping[str, object], *, allow_pickle: bool
    ) -> PicklePredictor:
        check_option_names(options, (), _FORMAT)
        return cls(signature, allow_pickle=allow_pickle)

    def load(self, data: bytes) -> None:
        if not self.allow_pickle:
            raise Forbidden(PICKLE_REFUSED)
        if is_compressed(data):
            raise FormatMismatch(
                f"the pickle is a compressed joblib file, which finmaas cannot read "
                f"(joblib is not a dependency); {_RESAVE}"
            )
        if b"NumpyArrayWrapper" in data:
            raise FormatMismatch(
                f"the pickle is a joblib file that keeps numpy arrays outside the pickle "
                f"stream, which finmaas cannot read (joblib is not a dependency); {_RESAVE}"
            )
        with runtime_errors("could not unpickle the model"):
            model = pickle.loads(data)  # noqa: S301 - an admin allowed this file explicitly
        self._loaded = Estimator.wrap(model, self.signature, _FORMAT)

    def _score(self, loaded: Estimator, x: np.ndarray) -> np.ndarray:
        return loaded.score(x, self.signature)
