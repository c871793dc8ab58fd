"""Infer a signature from a sample DataFrame."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pandas as pd
from pandas.api import types as ptypes

from finmaas.errors import InvalidSignature
from finmaas.schema.signature import (
    ModelSignature,
    Task,
    missing_positive_class,
    signature_from_dict,
)

MAX_INFERRED_CATEGORIES = 256
"""A text column with more distinct values than this is inferred as ``string``."""


def infer_signature(
    frame: pd.DataFrame,
    *,
    task: Task,
    classes: Sequence[str] | None = None,
    positive_class: str | None = None,
    pii: Collection[str] = (),
    categories: dict[str, Sequence[str]] | None = None,
) -> ModelSignature:
    """Build a signature from the columns of ``frame``, in order.

    ``category`` columns keep their declared category order (so pandas codes
    and finmaas codes agree); text columns with at most
    :data:`MAX_INFERRED_CATEGORIES` distinct values become ``category`` with
    sorted values. No min/max is inferred: a sample's range is not a rule.

    ``classes`` are in the model's order; a ``binary`` task needs
    ``positive_class``, the class whose probability the model returns, which must
    be the second of ``classes``.
    """
    if task == "binary" and positive_class is None:
        raise InvalidSignature(missing_positive_class("pass positive_class="))
    if isinstance(pii, str):
        pii = (pii,)
    unknown_pii = sorted(set(pii) - set(map(str, frame.columns)))
    if unknown_pii:
        raise InvalidSignature(f"pii column {unknown_pii[0]!r} is not in the data")
    categories = dict(categories or {})
    features = []
    for column, series in frame.items():  # items(), not frame[column]: names may repeat
        name = str(column)
        nullable = bool(series.isna().any())
        features.append(
            {
                "name": name,
                "nullable": nullable,
                "pii": name in pii,
                **_infer_type(name, series, categories.get(name)),
            }
        )
    # Validate as a document, so a broken rule is an InvalidSignature naming the input.
    return signature_from_dict(
        {
            "task": task,
            "inputs": features,
            "classes": tuple(str(c) for c in classes) if classes is not None else None,
            "positive_class": positive_class,
        }
    )


def _infer_type(name: str, series: pd.Series, declared: Sequence[str] | None) -> dict[str, object]:
    if declared is not None:
        return {"dtype": "category", "categories": tuple(str(c) for c in declared)}
    if isinstance(series.dtype, pd.CategoricalDtype):
        return {"dtype": "category", "categories": tuple(str(c) for c in series.cat.categories)}
    if ptypes.is_bool_dtype(series.dtype):
        return {"dtype": "bool"}
    if ptypes.is_integer_dtype(series.dtype):
        return {"dtype": "int"}
    if ptypes.is_float_dtype(series.dtype):
        return {"dtype": "float"}
    if ptypes.is_object_dtype(series.dtype) or ptypes.is_string_dtype(series.dtype):
        values = series.dropna()
        if not all(isinstance(v, str) for v in values):
            raise InvalidSignature(f"column {name!r} mixes text with other types; clean it first")
        distinct = sorted(set(values))
        if len(distinct) <= MAX_INFERRED_CATEGORIES:
            return {"dtype": "category", "categories": tuple(distinct)}
        return {"dtype": "string"}
    raise InvalidSignature(f"column {name!r} has unsupported dtype {series.dtype}")
