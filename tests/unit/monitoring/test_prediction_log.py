"""The prediction log's parts: decoding back to raw values, masking, sampling,
rotation, retention, the pending-row bound and reading files back."""

from __future__ import annotations

import asyncio
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from finmaas.monitoring.predictions import (
    CHUNK_BYTES,
    REDACTED,
    Entry,
    LogFiles,
    Masking,
    PredictionLog,
    RowEncoder,
    log_files,
    purge_files,
    read_log,
    sample,
)
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.schema import Feature, ModelSignature
from finmaas.schema.encoding import RecordEncoder, decode_column, decode_value
from finmaas.serving.decisions import DecisionRule

KEY = bytes(range(32))


def _lines(masking: Masking, entries: list[Entry]) -> list[dict[str, Any]]:
    chunks: list[bytes] = []
    count = RowEncoder(KEY, masking).encode(entries, lambda chunk: chunks.append(bytes(chunk)))
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    lines = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert len(lines) == count
    return lines


SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    inputs=(
        Feature(name="amount", dtype="float", nullable=True),
        Feature(name="months", dtype="int"),
        Feature(name="owner", dtype="bool", nullable=True),
        Feature(name="purpose", dtype="category", categories=("car", "tv"), nullable=True),
        Feature(name="age", dtype="int", pii=True, nullable=True),
        Feature(name="name", dtype="string", pii=True, nullable=True),
    ),
)
RECORDS: list[dict[str, Any]] = [
    {"amount": 1250.5, "months": 12, "owner": True, "purpose": "tv", "age": 35, "name": "Ann"},
    {"amount": None, "months": 6, "owner": None, "purpose": None, "age": None, "name": None},
    {"amount": 0.0, "months": 48, "owner": False, "purpose": "car", "age": 35, "name": "Bo"},
]
RULE = DecisionRule("binary", ("good", "bad"), 0.5)


def _entry(x: np.ndarray, rows: np.ndarray | None = None, at: float = 1.8e9) -> Entry:
    scores = np.linspace(0.1, 0.9, len(x))
    return Entry(at, "req-1", "key-1", "credit", 3, SIGNATURE, RULE, x, scores, rows)


def test_decode_column_gives_back_what_the_encoder_took() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    for j, feature in enumerate(SIGNATURE.inputs):
        column = decode_column(feature, x[:, j])
        assert column == [record[feature.name] for record in RECORDS], feature.name
        assert [type(v) for v in column] == [type(r[feature.name]) for r in RECORDS]
        assert column == [decode_value(feature, code) for code in x[:, j]]


def test_decode_column_of_a_float_array_without_strings() -> None:
    feature = Feature(name="purpose", dtype="category", categories=("a", "b", "c"))
    assert decode_column(feature, np.array([2.0, 0.0, math.nan])) == ["c", "a", None]


def test_hash_masking_writes_keyed_hashes_and_keeps_nulls() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    lines = _lines("hash", [_entry(x)])
    inputs = [line["inputs"] for line in lines]
    assert inputs[0]["age"] == pseudonym(KEY, "35") == inputs[2]["age"]
    assert inputs[0]["name"] == pseudonym(KEY, "Ann")
    assert inputs[2]["name"] == pseudonym(KEY, "Bo")
    assert inputs[1]["age"] is None
    assert inputs[1]["name"] is None
    assert inputs[0]["purpose"] == "tv"
    assert inputs[0]["amount"] == 1250.5
    assert [line["outputs"] for line in lines] == RULE.records(np.array([0.1, 0.5, 0.9]))
    assert lines[2]["outputs"]["label"] == "bad"
    assert [line["row"] for line in lines] == [0, 1, 2]
    assert lines[0]["ts"] == "2027-01-15T08:00:00.000Z"


def test_redact_masking_writes_the_placeholder() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    lines = _lines("redact", [_entry(x)])
    assert [line["inputs"]["age"] for line in lines] == [REDACTED, None, REDACTED]
    assert [line["inputs"]["name"] for line in lines] == [REDACTED, None, REDACTED]
    assert "Ann" not in str(lines)


def test_sampled_rows_keep_their_row_numbers() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    kept = np.array([0, 2])
    lines = _lines("hash", [_entry(x[kept], kept)])
    assert [line["row"] for line in lines] == [0, 2]
    assert [line["inputs"]["months"] for line in lines] == [12, 48]


def test_sample() -> None:
    assert sample(1.0, 5) is None
    assert sample(1e-12, 1) is False
    np.random.seed(1)
    kept = sample(0.5, 10_000)
    assert isinstance(kept, np.ndarray)
    assert 4_700 < kept.size < 5_300
    assert list(kept) == sorted(kept)


def test_files_rotate_at_the_size_limit_and_the_day(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=100)
    day = date(2026, 11, 22)
    for _ in range(5):
        files.write("credit", day, b"x" * 39 + b"\n")  # two lines fit in 100 bytes
    files.write("credit", date(2026, 11, 23), b"y\n")
    files.close()
    written = sorted((tmp_path / "credit").glob("*.jsonl"))
    sizes = sorted(path.stat().st_size for path in written)
    assert sizes == [2, 40, 80, 80]
    assert [path.name[:10] for path in written].count("2026-11-23") == 1


def test_a_line_larger_than_the_limit_still_gets_a_file(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=10)
    files.write("credit", date(2026, 11, 22), b"z" * 50 + b"\n")
    files.close()
    assert [p.stat().st_size for p in (tmp_path / "credit").glob("*.jsonl")] == [51]


def test_purge_deletes_only_files_of_days_before(tmp_path: Path) -> None:
    folder = tmp_path / "credit"
    folder.mkdir()
    for name in ("2026-01-01T000000Z-1.jsonl", "2026-02-01T000000Z-1.jsonl", "notes.jsonl"):
        (folder / name).write_text("{}\n")
    assert purge_files(tmp_path, date(2026, 2, 1)) == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-02-01T000000Z-1.jsonl",
        "notes.jsonl",
    ]


def test_read_log_merges_files_in_time_order_and_skips_a_partial_last_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "credit"
    folder.mkdir()
    (folder / "2026-11-22T000000Z-1.jsonl").write_bytes(
        b'{"ts":"2026-11-22T00:00:01.000Z","version":1}\n'
        b'{"ts":"2026-11-22T00:00:03.000Z","version":2}\n'
        b'{"ts":"2026-11-22T00:00:0'  # a server is still writing this one
    )
    (folder / "2026-11-22T000000Z-2.jsonl").write_bytes(
        b'{"ts":"2026-11-22T00:00:02.000Z","version":1}\n'
    )
    (folder / "2026-11-23T000000Z-2.jsonl").write_bytes(
        b'{"ts":"2026-11-23T00:00:00.000Z","version":1}\n'
    )
    every = log_files(tmp_path, "credit", None, None)
    assert [row["ts"][8:19] for row in read_log(every)] == [
        "22T00:00:01",
        "22T00:00:02",
        "22T00:00:03",
        "23T00:00:00",
    ]
    assert len(list(read_log(every, version=1))) == 3
    one_day = log_files(tmp_path, "credit", date(2026, 11, 22), date(2026, 11, 23))
    assert len(one_day) == 2
    assert log_files(tmp_path, "unknown", None, None) == []


def test_rows_beyond_the_pending_bound_are_dropped_and_counted(tmp_path: Path) -> None:
    counted: list[tuple[str, str, int]] = []
    x = RecordEncoder(SIGNATURE).encode(RECORDS)

    async def scenario() -> None:
        log = PredictionLog(
            tmp_path,
            key=KEY,
            masking="hash",
            max_bytes=1 << 20,
            retention_days=30,
            counted=lambda *args: counted.append(args),
            max_pending_rows=5,
        )
        for _ in range(3):
            log.record(
                1.0,
                request_id="r",
                key_id=None,
                model="credit",
                version=1,
                signature=SIGNATURE,
                rule=RULE,
                x=x[:2],
                scores=np.array([0.2, 0.7]),
            )
        assert log.backlog == 4
        await log.close()
        assert log.backlog == 0

    asyncio.run(scenario())
    assert counted == [("credit", "dropped", 2), ("credit", "written", 4)]
    lines = (next((tmp_path / "credit").glob("*.jsonl"))).read_bytes().splitlines()
    assert len(lines) == 4


def test_entries_of_one_version_are_decoded_together_and_keep_their_own_fields() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    kept = np.array([1])
    first = _entry(x[:2])
    second = Entry(
        1.8e9 + 1, "req-2", None, "credit", 3, SIGNATURE, RULE, x[kept], np.array([0.7]), kept
    )
    lines = _lines("hash", [first, second])
    assert [(line["request_id"], line["row"], line["key_id"]) for line in lines] == [
        ("req-1", 0, "key-1"),
        ("req-1", 1, "key-1"),
        ("req-2", 1, None),
    ]
    assert [line["inputs"]["months"] for line in lines] == [12, 6, 6]
    assert [line["outputs"]["probability"] for line in lines] == [0.1, 0.9, 0.7]
    assert lines[2]["ts"] == "2027-01-15T08:00:01.000Z"


def test_a_large_batch_is_written_in_pieces_of_whole_lines() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS * 200)
    chunks: list[bytes] = []
    count = RowEncoder(KEY, "hash").encode([_entry(x)], lambda chunk: chunks.append(bytes(chunk)))
    assert count == 600
    assert len(chunks) > 1
    assert all(len(chunk) < CHUNK_BYTES + 1024 and chunk.endswith(b"\n") for chunk in chunks)
    lines = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert [line["row"] for line in lines] == list(range(600))


def test_lines_escape_what_json_needs_and_keep_percent_signs() -> None:
    signature = ModelSignature(
        task="binary",
        classes=("good", "bad"),
        inputs=(
            Feature(name='100% "odd" name', dtype="string"),
            Feature(name="rate", dtype="float"),
        ),
    )
    x = RecordEncoder(signature).encode(
        [{'100% "odd" name': 'a "quote", a comma\n%s', "rate": 1e-7}]
    )
    entry = Entry(1.8e9, 'req-"%d', "key,1", "credit", 3, signature, RULE, x, np.array([0.2]), None)
    (line,) = _lines("hash", [entry])
    assert line["inputs"] == {'100% "odd" name': 'a "quote", a comma\n%s', "rate": 1e-7}
    assert (line["request_id"], line["key_id"]) == ('req-"%d', "key,1")
