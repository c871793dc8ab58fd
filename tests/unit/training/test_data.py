"""Training data files: CSV or Parquet told by content, and every refusal before training."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from finmaas.errors import Invalid
from finmaas.training.data import (
    check_binary_target,
    check_columns,
    check_numeric_columns,
    read_table,
)

LIMIT = 1 << 20
FRAME = pd.DataFrame(
    {
        "amount": [1200.0, 560.5, 3100.0, 800.0],
        "purpose": ["car", "tv", "car", "furniture"],
        "outcome": ["good", "bad", "good", "good"],
    }
)


def _refused(path: Path) -> str:
    with pytest.raises(Invalid) as caught:
        read_table(path, max_bytes=LIMIT)
    return str(caught.value)


def test_csv_and_parquet_read_the_same_frame_with_the_files_digest(tmp_path: Path) -> None:
    csv = tmp_path / "loans.csv"
    FRAME.to_csv(csv, index=False)
    parquet = tmp_path / "loans.data"  # the content decides, not the name
    FRAME.to_parquet(parquet)
    from_csv = read_table(csv, max_bytes=LIMIT)
    from_parquet = read_table(parquet, max_bytes=LIMIT)
    assert (from_csv.file_format, from_parquet.file_format) == ("csv", "parquet")
    pd.testing.assert_frame_equal(from_csv.frame, FRAME)
    pd.testing.assert_frame_equal(from_parquet.frame, FRAME)
    assert from_csv.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert from_csv.name == "loans.csv"


def test_a_semicolon_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    path.write_text("amount;outcome\n1;good\n2;bad\n")
    assert list(read_table(path, max_bytes=LIMIT).frame.columns) == ["amount", "outcome"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "data file 'x.csv' is empty"),
        (b"amount,outcome\n", "data file 'x.csv' has no rows"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "data file 'x.csv' is neither CSV nor Parquet: it holds binary data",
        ),
        (
            "amount,outcome\n1,caf\u00e9\n".encode("latin-1"),
            "data file 'x.csv' is neither CSV nor Parquet: it is not UTF-8 text (byte 20)",
        ),
        (
            b"just one column\nof words\n",
            "data file 'x.csv' is neither CSV nor Parquet: its first line has no delimiter "
            "(, ; tab |)",
        ),
        (b"a,a\n1,2\n", None),  # pandas renames a repeated header: a, a.1
    ],
)
def test_files_that_are_not_training_data_are_refused(
    tmp_path: Path, content: bytes, message: str | None
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    if message is None:
        assert list(read_table(path, max_bytes=LIMIT).frame.columns) == ["a", "a.1"]
    else:
        assert _refused(path) == message


def test_a_broken_parquet_file_and_a_missing_or_large_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    assert _refused(broken).startswith(
        "data file 'broken.parquet' is not a readable Parquet file: "
    )
    assert _refused(tmp_path / "none.csv") == "data file 'none.csv' does not exist"
    large = tmp_path / "large.csv"
    large.write_bytes(b"a,b\n" + b"1,2\n" * 300_000)
    assert _refused(large) == "data file 'large.csv' is 1,200,004 bytes; the limit is 1,048,576"


def _target_error(frame: pd.DataFrame, positive: str | None = None, folds: int = 2) -> str:
    with pytest.raises(Invalid) as caught:
        check_binary_target(frame, "outcome", positive, folds)
    return str(caught.value)


def test_the_target_classes_and_the_adverse_one() -> None:
    big = pd.concat([FRAME] * 10, ignore_index=True)
    assert check_binary_target(big, "outcome", None, 2) == ("good", "bad")
    numbers = big.assign(outcome=(big["outcome"] == "bad").astype(int))
    assert check_binary_target(numbers, "outcome", None, 2) == ("0", "1")
    named = big.assign(outcome=big["outcome"].map({"good": "repaid", "bad": "default"}))
    assert check_binary_target(named, "outcome", "default", 2) == ("repaid", "default")
    assert _target_error(named) == (
        "target 'outcome' has classes ['default', 'repaid']: name the adverse one with --positive"
    )
    assert _target_error(named, "late") == (
        "--positive 'late' is not a class of 'outcome': ['default', 'repaid']"
    )


def test_bad_targets_are_refused_before_training() -> None:
    big = pd.concat([FRAME] * 10, ignore_index=True)
    assert _target_error(big.drop(columns=["outcome"])) == (
        "data has no target column 'outcome' (columns: 'amount', 'purpose')"
    )
    missing = big.copy()
    missing.loc[7, "outcome"] = None
    assert _target_error(missing) == "row 7: target 'outcome' is missing"
    assert _target_error(big.assign(outcome="good")) == (
        "target 'outcome' has one class ('good'); a binary model needs two"
    )
    assert _target_error(big.assign(outcome=["a", "b", "c", "d"] * 10)) == (
        "target 'outcome' has 4 classes ('a', 'b', 'c', 'd'…); it needs two"
    )
    # 10 bad rows: enough for 2 folds (5 each), not for 5.
    assert _target_error(big, folds=5) == (
        "too few rows for 5 folds: class 'bad' of 'outcome' has 10 rows; "
        "it needs at least 25 (5 per fold)"
    )


def test_a_stray_word_in_a_numeric_column_is_named_with_its_row() -> None:
    frame = pd.DataFrame({"amount": ["100", "250", "n/a", "75"], "purpose": ["a", "b", "c", "d"]})
    with pytest.raises(Invalid) as caught:
        check_numeric_columns(frame, ["amount", "purpose"])
    assert str(caught.value) == (
        "row 2: column 'amount' holds numbers but this value is not one: 'n/a'"
    )
    check_numeric_columns(frame.drop(index=2), ["amount", "purpose"])  # text stays text
    check_columns(frame, ["amount"], "named")
    with pytest.raises(Invalid, match=r"^data has no named column 'age' \(columns: 'amount', "):
        check_columns(frame, ["age"], "named")
