"""Reading the files, dates and KEY=VALUE flags that CLI commands take, with one-line errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from finmaas.errors import Invalid, NotFound

if TYPE_CHECKING:
    import pandas as pd


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise Invalid(f"{what} file {str(path)!r} is a folder") from None


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(read_file(path, what))
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"{what} file {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Invalid(f"{what} file {str(path)!r} must hold a JSON object")
    return value


def parse_pairs(items: list[str], option: str, *, number: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"{option} takes KEY=VALUE, got {item!r}")
        if number:
            try:
                out[key] = float(value)
            except ValueError:
                raise Invalid(f"{option} {key} must be a number, got {value!r}") from None
        else:
            out[key] = value
    return out


def read_csv(path: Path, what: str) -> pd.DataFrame:
    import pandas as pd  # only the commands that read a CSV pay for pandas

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise NotFound(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise Invalid(f"{what} file {str(path)!r} is a folder") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Invalid(f"{what} file {str(path)!r} is not a readable CSV ({detail})") from None


def parse_day(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` option value, or None when the option was not given."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{option}: {text[:40]!r} is not a date (YYYY-MM-DD)") from None
