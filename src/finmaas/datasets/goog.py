"""Alphabet (GOOG) daily prices, 2004-08-19 to 2013-03-01: the forecasting example.

Package data like German Credit; see ``README.md`` in this folder for the source.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import pandas as pd

_FILE = "GOOG.csv"


def _csv_bytes() -> bytes:
    return resources.files("finmaas.datasets").joinpath(_FILE).read_bytes()


def load_goog() -> pd.DataFrame:
    """The 2,148 trading days: ``Date`` (datetime64), then Open, High, Low, Close, Volume."""
    frame = pd.read_csv(io.BytesIO(_csv_bytes()))
    frame = frame.rename(columns={frame.columns[0]: "Date"})
    frame["Date"] = pd.to_datetime(frame["Date"])
    return frame


def goog_data_sha256() -> str:
    """The sha256 (hex) of the shipped CSV bytes, for lineage."""
    return hashlib.sha256(_csv_bytes()).hexdigest()
