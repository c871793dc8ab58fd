"""Hand a scikit-learn model fitted on a raw DataFrame the frame it was fitted on.

The usual scikit-learn way is a pipeline fitted on the raw data: text categories
go through a ``OneHotEncoder`` or ``OrdinalEncoder`` inside a ``ColumnTransformer``.
Such a model cannot read the signature's encoding (a category as its index), so
:class:`RawFrame` turns an encoded batch back into the frame it was fitted on:
each column by the name the model knows it by (``feature_names_in_``), a
category as its text, a missing value as NaN, numbers as float64.

:func:`reads_raw_text` tells such a model apart from one fitted on the encoding
(an array, or a DataFrame of codes): it was fitted on a DataFrame and one of its
fitted encoders (anywhere inside it, a pipeline's steps, a column transformer's
parts, a gradient-boosting model's own preprocessor) learnt text categories.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from finmaas.errors import SchemaMismatch
from finmaas.schema.signature import ModelSignature

_MAX_DEPTH = 12
"""How deep :func:`reads_raw_text` looks into nested estimators."""


def reads_raw_text(model: Any) -> bool:
    """Whether ``model`` was fitted on a DataFrame whose categories were text."""
    if getattr(model, "feature_names_in_", None) is None:
        return False
    return any(_learnt_text(part) for part in _fitted_parts(model, 0, set()))


def _learnt_text(part: Any) -> bool:
    categories = getattr(part, "categories_", None)
    if not isinstance(categories, list | tuple):
        return False
    return any(
        isinstance(values, np.ndarray)
        and values.dtype.kind in "OUT"
        and any(isinstance(value, str) for value in values.tolist())
        for values in categories
    )


def _fitted_parts(obj: Any, depth: int, seen: set[int]) -> Iterator[Any]:
    """``obj`` and every estimator held in its attributes (lists, tuples and dicts too)."""
    if depth > _MAX_DEPTH or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, list | tuple):
        for item in obj:
            yield from _fitted_parts(item, depth + 1, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _fitted_parts(item, depth + 1, seen)
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        yield obj
        for value in vars(obj).values():
            if isinstance(value, list | tuple | dict) or hasattr(value, "get_params"):
                yield from _fitted_parts(value, depth + 1, seen)


class RawFrame:
    """Builds, for one signature, the DataFrame a raw-fitted model reads.

    ``columns`` are the model's ``feature_names_in_``, each taken from the
    signature input of that name (so the model's column order may differ from
    the signature's).
    """

    def __init__(self, signature: ModelSignature, columns: Sequence[str]) -> None:
        names = signature.feature_names
        unknown = [name for name in columns if name not in names]
        if unknown:
            raise SchemaMismatch(
                f"the scikit-learn model was fitted on columns that are not in the signature "
                f"({_listed(unknown)}); register it with a sample (X_sample) holding exactly "
                "the columns it was fitted on"
            )
        unread = [name for name in names if name not in columns]
        if unread:
            raise SchemaMismatch(
                f"the signature has inputs the scikit-learn model was not fitted on "
                f"({_listed(unread)}); register it with a sample (X_sample) holding exactly "
                "the columns it was fitted on"
            )
        position = {name: i for i, name in enumerate(names)}
        features = {feature.name: feature for feature in signature.inputs}
        self.columns = tuple(columns)
        self._plan: list[tuple[str, int, np.ndarray | None, bool]] = []
        for name in columns:
            feature = features[name]
            labels = None
            if feature.dtype == "category":
                labels = np.array([*(feature.categories or ()), np.nan], dtype=object)
            self._plan.append((name, position[name], labels, feature.dtype == "string"))

    def build(self, x: np.ndarray) -> Any:
        """The DataFrame of an encoded ``(n, n_features)`` batch."""
        import pandas as pd

        data: dict[str, np.ndarray] = {}
        for name, index, labels, text in self._plan:
            column = x[:, index]
            if labels is not None:
                codes = column.astype(np.float64, copy=False)
                missing = len(labels) - 1
                data[name] = labels[np.where(np.isnan(codes), missing, codes).astype(np.intp)]
            elif text:
                data[name] = column
            else:
                data[name] = column.astype(np.float64, copy=False)
        return pd.DataFrame(data, copy=False)


def _listed(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
