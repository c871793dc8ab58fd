"""A version's drift over a window: PSI of the score, CSI of every input."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np

from finmaas.errors import Invalid, NotFound
from finmaas.monitoring.counts import SCORE, binnings_of
from finmaas.monitoring.drift import Drift, Thresholds, drift_of
from finmaas.registry import Model, ModelVersion


def thresholds_of(model: Model) -> Thresholds:
    """The model's own bands (``finmaas models update --drift-watch/--drift-alert``)."""
    return Thresholds(model.monitoring.drift_watch, model.monitoring.drift_alert)


def drift_report(
    version: ModelVersion,
    stored: dict[str, dict[int, int]],
    *,
    since: date,
    until: date,
    min_rows: int,
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """The JSON-ready report: the score's PSI, then inputs by CSI, largest first; below
    ``min_rows`` served rows every index is null and ``note`` says why."""
    thresholds = thresholds or Thresholds()
    binnings = binnings_of(version.signature, version.reference_profile)
    if not binnings:
        raise NotFound(
            f"{version.ref} has no reference profile: publish it with a reference sample "
            "to watch its drift"
        )
    drifts = []
    for binning in binnings:
        counts = np.zeros(len(binning.labels), dtype=np.int64)
        for index, count in stored.get(binning.name, {}).items():
            if 0 <= index < counts.size:
                counts[index] = count
        drifts.append(
            drift_of(
                binning.name,
                binning.labels,
                binning.expected,
                counts,
                thresholds,
                min_rows=min_rows,
            )
        )
    score = next((d for d in drifts if d.name == SCORE), None)
    features = sorted(
        (d for d in drifts if d.name != SCORE),
        key=lambda d: -d.index if not math.isnan(d.index) else 0.0,
    )
    rows = max((d.rows for d in drifts), default=0)
    return {
        "model": version.model,
        "version": version.version,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rows": rows,
        "min_rows": min_rows,
        "note": None if rows >= min_rows else not_enough_rows(rows, min_rows),
        "thresholds": {"watch": thresholds.watch, "alert": thresholds.alert},
        "score": None if score is None else _entry(score),
        "features": [_entry(d) for d in features],
    }


def not_enough_rows(rows: int, min_rows: int) -> str:
    return (
        f"not enough rows ({rows} of {min_rows}): no drift index below {min_rows} "
        "served rows (the drift_min_rows setting)"
    )


def _entry(drift: Drift) -> dict[str, Any]:
    return {
        "name": drift.name,
        "index": None if math.isnan(drift.index) else drift.index,
        "band": drift.band,
        "p_value": None if math.isnan(drift.p_value) else drift.p_value,
        "rows": drift.rows,
        "bins": [
            {"bin": label, "reference": expected, "live": actual}
            for label, expected, actual in zip(
                drift.labels,
                drift.expected,
                drift.actual or (None,) * len(drift.labels),
                strict=True,
            )
        ],
    }


MAX_WINDOW_DAYS = 366


def window_dates(
    window: str | None, since: date | None, until: date | None, today: date
) -> tuple[date, date]:
    """``since`` ≤ day < ``until``: the last ``window`` days (``7d``, the default, ends
    today), or explicit dates (``until`` exclusive, default tomorrow)."""
    if window is not None and (since is not None or until is not None):
        raise Invalid("give either a window (like 7d) or since/until dates, not both")
    end = until or today + timedelta(days=1)
    if since is not None:
        if since >= end:
            raise Invalid("'since' must be before 'until'")
        return since, end
    text = window or "7d"
    if not (
        text.endswith("d")
        and text[:-1].isascii()
        and text[:-1].isdigit()
        and 1 <= int(text[:-1]) <= MAX_WINDOW_DAYS
    ):
        raise Invalid(
            f"window must be a number of days from 1d to {MAX_WINDOW_DAYS}d, got {text[:20]!r}"
        )
    return end - timedelta(days=int(text[:-1])), end
