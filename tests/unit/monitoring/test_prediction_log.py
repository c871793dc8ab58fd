"""The prediction log's parts: decoding back to raw values, masking, sampling,
rotation, retention, the pending-row bound and reading files back, in both
formats (the Parquet rows read back must equal the JSON lines)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from finmaas.config import Settings
from finmaas.monitoring import predictions, predictions_jsonl, predictions_parquet
from finmaas.monitoring.prediction_rows import REDACTED, Masking, PendingRows
from finmaas.monitoring.predictions import (
    FLUSH_INTERVAL,
    WRITER_THREAD,
    LogFormat,
    PredictionLog,
    log_files,
    purge_files,
    read_log,
    sample,
    unfinished_files,
)
from finmaas.monitoring.predictions_jsonl import CHUNK_BYTES, JsonLinesFiles, RowEncoder
from finmaas.monitoring.predictions_parquet import ArrowEncoder, ParquetFiles
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.schema import Feature, ModelSignature
from finmaas.schema.encoding import RecordEncoder, decode_column, decode_value
from finmaas.schema.output_rule import DecisionRule

KEY = bytes(range(32))


FORMATS: tuple[LogFormat, ...] = ("jsonl", "parquet")


def _lines(
    masking: Masking, pending: PendingRows, file_format: LogFormat = "jsonl"
) -> list[dict[str, Any]]:
    """The rows of ``pending`` as written in ``file_format`` and read back."""
    if file_format == "parquet":
        with TemporaryDirectory() as folder:
            path = Path(folder) / "rows.parquet"
            pq.write_table(ArrowEncoder(KEY, masking).table(pending), path)
            return list(predictions_parquet.read_rows(path))
    chunks: list[bytes] = []
    count = RowEncoder(KEY, masking).encode(pending, lambda chunk: chunks.append(bytes(chunk)))
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    lines = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert len(lines) == count
    return lines


SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
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


def _pending(
    x: np.ndarray, rows: np.ndarray | None = None, at: float = 1.8e9, version: int = 3
) -> PendingRows:
    """One request of ``version`` of "credit"."""
    pending = PendingRows("credit", version, SIGNATURE, RULE)
    pending.add(at, "req-1", "key-1", x, np.linspace(0.1, 0.9, len(x)), rows)
    return pending


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


@pytest.mark.parametrize("file_format", FORMATS)
def test_hash_masking_writes_keyed_hashes_and_keeps_nulls(file_format: LogFormat) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    lines = _lines("hash", _pending(x), file_format)
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


@pytest.mark.parametrize("file_format", FORMATS)
def test_redact_masking_writes_the_placeholder(file_format: LogFormat) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    lines = _lines("redact", _pending(x), file_format)
    assert [line["inputs"]["age"] for line in lines] == [REDACTED, None, REDACTED]
    assert [line["inputs"]["name"] for line in lines] == [REDACTED, None, REDACTED]
    assert "Ann" not in str(lines)


@pytest.mark.parametrize("file_format", FORMATS)
def test_sampled_rows_keep_their_row_numbers(file_format: LogFormat) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    kept = np.array([0, 2])
    lines = _lines("hash", _pending(x[kept], kept), file_format)
    assert [line["row"] for line in lines] == [0, 2]
    assert [line["inputs"]["months"] for line in lines] == [12, 48]


def test_pending_rows_split_by_the_utc_day_they_were_served() -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    midnight = 1_800_057_600.0  # 2027-01-16T00:00:00Z
    pending = _pending(x[:1], at=midnight - 0.5)
    pending.add(midnight, "req-2", None, x[1:], np.array([0.4, 0.6]), None)
    pending.add(midnight - 0.25, "req-3", "key-2", x[:1], np.array([0.8]), np.array([2]))
    (first_day, before), (second_day, after) = pending.by_day()
    assert (first_day, second_day) == (date(2027, 1, 15), date(2027, 1, 16))
    assert (before.request_ids, before.key_ids, before.count) == (
        ["req-1", "req-3"],
        ["key-1", "key-2"],
        2,
    )
    assert (after.request_ids, after.at, after.count) == (["req-2"], [midnight], 2)
    assert before.rows[1] is not None
    assert before.rows[1].tolist() == [2]
    assert (after.model, after.version, after.signature, after.rule) == (
        "credit",
        3,
        SIGNATURE,
        RULE,
    )
    one_day = _pending(x)
    assert one_day.by_day() == [(date(2027, 1, 15), one_day)]


def test_sample() -> None:
    assert sample(1.0, 5) is None
    assert sample(1e-12, 1) is False
    np.random.seed(1)
    kept = sample(0.5, 10_000)
    assert isinstance(kept, np.ndarray)
    assert 4_700 < kept.size < 5_300
    assert list(kept) == sorted(kept)


def test_json_lines_files_rotate_at_the_size_limit_and_the_day(tmp_path: Path) -> None:
    files = JsonLinesFiles(tmp_path, max_bytes=100, encoder=RowEncoder(KEY, "hash"))
    day = date(2026, 11, 22)
    for _ in range(5):
        files.append("credit", day, b"x" * 39 + b"\n")  # two lines fit in 100 bytes
    files.append("credit", date(2026, 11, 23), b"y\n")
    files.close()
    written = sorted((tmp_path / "credit").glob("*.jsonl"))
    sizes = sorted(path.stat().st_size for path in written)
    assert sizes == [2, 40, 80, 80]
    assert [path.name[:10] for path in written].count("2026-11-23") == 1
    assert all(path.stat().st_mode & 0o077 == 0 for path in written)


def test_a_line_larger_than_the_limit_still_gets_a_file(tmp_path: Path) -> None:
    files = JsonLinesFiles(tmp_path, max_bytes=10, encoder=RowEncoder(KEY, "hash"))
    files.append("credit", date(2026, 11, 22), b"z" * 50 + b"\n")
    files.close()
    assert [p.stat().st_size for p in (tmp_path / "credit").glob("*.jsonl")] == [51]


def _parquet_files(tmp_path: Path, max_bytes: int = 1 << 30, rotate: float = 3600) -> ParquetFiles:
    return ParquetFiles(tmp_path, max_bytes, rotate, ArrowEncoder(KEY, "hash"))


def test_a_parquet_file_is_readable_only_once_closed(tmp_path: Path) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    files = _parquet_files(tmp_path)
    assert files.write(date(2027, 1, 15), _pending(x)) == 3
    assert log_files(tmp_path, "credit", None, None) == []
    (unfinished,) = unfinished_files(tmp_path, "credit", None, None)
    assert unfinished.name.endswith("-v3.parquet.part")
    assert unfinished.stat().st_mode & 0o077 == 0
    files.close_expired()  # not yet due
    assert log_files(tmp_path, "credit", None, None) == []
    files.close()
    (path,) = log_files(tmp_path, "credit", None, None)
    assert path.name == unfinished.name.removesuffix(".part")
    assert unfinished_files(tmp_path, "credit", None, None) == []
    assert [row["inputs"]["months"] for row in read_log([path])] == [12, 6, 48]


def test_with_the_default_settings_a_row_can_be_exported_within_a_minute(
    tmp_path: Path,
) -> None:
    """Issue 21: rows stayed unreadable for 15 minutes. The server writes pending rows
    and closes the files due every ``FLUSH_INTERVAL``; this replays those rounds on a
    clock the test moves."""
    settings = Settings(home=tmp_path / "home")
    now = [0.0]
    files = ParquetFiles(
        tmp_path,
        settings.prediction_log_max_bytes,
        settings.prediction_log_rotate_seconds,
        ArrowEncoder(KEY, "hash"),
        clock=lambda: now[0],
    )
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    served = 0.0
    rounds = np.arange(served + FLUSH_INTERVAL, served + 60.0, FLUSH_INTERVAL)
    for at in rounds:
        now[0] = float(at)
        if at == rounds[0]:
            files.write(date(2027, 1, 15), _pending(x))  # the first round after serving
        files.close_expired()
    (path,) = log_files(tmp_path, "credit", None, None)
    assert len(list(read_log([path]))) == 3
    assert unfinished_files(tmp_path, "credit", None, None) == []


def test_an_export_opens_one_file_per_writer_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of one worker and version follow each other in time: they are read one
    after another, and only the workers' runs are merged."""
    folder = tmp_path / "credit"
    folder.mkdir()
    for minute in range(6):
        for pid in (11, 12, 13):
            second = minute * 60 + pid - 11
            (folder / f"2026-11-22T00{minute:02d}{pid - 11:02d}Z-{pid}.jsonl").write_bytes(
                b'{"ts":"2026-11-22T00:%02d:%02d.000Z","version":1}\n' % (second // 60, second % 60)
            )
    opened, most = [0], [0]

    def counted(path: Path) -> Iterator[dict[str, Any]]:
        opened[0] += 1
        most[0] = max(most[0], opened[0])
        try:
            yield from predictions_jsonl.read_rows(path)
        finally:
            opened[0] -= 1

    monkeypatch.setitem(predictions._READERS, ".jsonl", counted)
    rows = list(read_log(log_files(tmp_path, "credit", None, None)))
    assert len(rows) == 18
    assert [row["ts"] for row in rows] == sorted(row["ts"] for row in rows)
    assert most[0] == 3


def test_parquet_files_close_when_due_and_at_a_new_day_or_version(tmp_path: Path) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    files = _parquet_files(tmp_path, rotate=0.0)
    files.write(date(2027, 1, 15), _pending(x))
    files.write(date(2027, 1, 15), _pending(x[:1], version=4))  # another version, another file
    files.write(date(2027, 1, 16), _pending(x[:2], at=1.8e9 + 86_400))
    assert len(log_files(tmp_path, "credit", None, None)) == 1  # the day changed
    files.close_expired()  # both due at once with rotate=0
    written = log_files(tmp_path, "credit", None, None)
    assert sorted(path.name[:10] for path in written) == ["2027-01-15", "2027-01-15", "2027-01-16"]
    assert sorted(len(list(read_log([path]))) for path in written) == [1, 2, 3]
    assert unfinished_files(tmp_path, "credit", None, None) == []


def test_parquet_files_rotate_at_the_size_limit_and_keep_row_groups_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS * 100)
    size = ArrowEncoder(KEY, "hash").table(_pending(x)).nbytes
    monkeypatch.setattr(predictions_parquet, "ROW_GROUP_BYTES", size * 2)
    files = _parquet_files(tmp_path, max_bytes=size * 5)
    for second in range(12):  # five batches fit in a file
        files.write(date(2027, 1, 15), _pending(x, at=1.8e9 + second))
    files.close()
    written = log_files(tmp_path, "credit", None, None)
    shapes = [pq.ParquetFile(path).metadata for path in written]
    # Five batches a file, written two at a time as a row group and the rest at the close.
    assert sorted((meta.num_rows, meta.num_row_groups) for meta in shapes) == [
        (600, 1),
        (1500, 3),
        (1500, 3),
    ]
    stamps = [row["ts"] for row in read_log(written)]
    assert len(stamps) == 3600
    assert stamps == sorted(stamps)


def test_purge_deletes_only_files_of_days_before(tmp_path: Path) -> None:
    folder = tmp_path / "credit"
    folder.mkdir()
    names = (
        "2026-01-01T000000Z-1.jsonl",
        "2026-01-01T000000Z-1-v2.parquet",
        "2026-01-01T000000Z-7-v2.parquet.part",  # left by a worker that died
        "2026-02-01T000000Z-1.jsonl",
        "2026-02-01T000000Z-1-v2.parquet.part",
        "notes.jsonl",
    )
    for name in names:
        (folder / name).write_text("{}\n")
    assert purge_files(tmp_path, date(2026, 2, 1)) == 3
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-02-01T000000Z-1-v2.parquet.part",
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


@pytest.mark.parametrize("file_format", FORMATS)
def test_rows_beyond_the_pending_bound_are_dropped_and_counted(
    tmp_path: Path, file_format: LogFormat
) -> None:
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
            file_format=file_format,
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
    assert len(list(read_log(log_files(tmp_path, "credit", None, None)))) == 4


@pytest.mark.parametrize("file_format", FORMATS)
def test_entries_of_one_version_are_decoded_together_and_keep_their_own_fields(
    file_format: LogFormat,
) -> None:
    x = RecordEncoder(SIGNATURE).encode(RECORDS)
    kept = np.array([1])
    pending = _pending(x[:2])
    pending.add(1.8e9 + 1, "req-2", None, x[kept], np.array([0.7]), kept)
    assert (len(pending), pending.count) == (2, 3)
    lines = _lines("hash", pending, file_format)
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
    count = RowEncoder(KEY, "hash").encode(_pending(x), lambda chunk: chunks.append(bytes(chunk)))
    assert count == 600
    assert len(chunks) > 1
    assert all(len(chunk) < CHUNK_BYTES + 1024 and chunk.endswith(b"\n") for chunk in chunks)
    lines = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert [line["row"] for line in lines] == list(range(600))


@pytest.mark.parametrize("file_format", FORMATS)
def test_lines_escape_what_json_needs_and_keep_percent_signs(file_format: LogFormat) -> None:
    signature = ModelSignature(
        task="binary",
        classes=("good", "bad"),
        positive_class="bad",
        inputs=(
            Feature(name='100% "odd" name', dtype="string"),
            Feature(name="rate", dtype="float"),
        ),
    )
    x = RecordEncoder(signature).encode(
        [{'100% "odd" name': 'a "quote", a comma\n%s', "rate": 1e-7}]
    )
    pending = PendingRows("credit", 3, signature, RULE)
    pending.add(1.8e9, 'req-"%d', "key,1", x, np.array([0.2]), None)
    (line,) = _lines("hash", pending, file_format)
    assert line["inputs"] == {'100% "odd" name': 'a "quote", a comma\n%s', "rate": 1e-7}
    assert (line["request_id"], line["key_id"]) == ('req-"%d', "key,1")


def _random_requests(signature: ModelSignature, rule: DecisionRule) -> PendingRows:
    """Forty requests of 1-9 rows with random values (nulls included), some sampled."""
    rng = np.random.default_rng(7)
    pending = PendingRows("m", 2, signature, rule)
    for index in range(40):
        count = int(rng.integers(1, 10))
        records = [
            {
                "amount": None if rng.random() < 0.2 else float(rng.normal(2000, 900)),
                "months": int(rng.integers(4, 72)),
                "owner": None if rng.random() < 0.2 else bool(rng.random() < 0.5),
                "purpose": [None, "car", "tv"][int(rng.integers(0, 3))],
                "age": None if rng.random() < 0.1 else int(rng.integers(18, 80)),
                "name": None if rng.random() < 0.1 else f"person {rng.integers(0, 20)}",
            }
            for _ in range(count)
        ]
        x = RecordEncoder(signature).encode(records)
        width = len(rule.classes) if rule.task == "multiclass" else 0
        scores = rng.dirichlet(np.ones(width), count) if width else rng.random(count)
        kept = np.flatnonzero(rng.random(count) < 0.6) if index % 3 == 0 else None
        if kept is not None:
            x, scores = x[kept], scores[kept]
        key_id = None if index % 4 == 0 else f"key-{index % 3}"
        at = 1.8e9 + index * 0.0137
        pending.add(at, f"req-{index}", key_id, x, scores, kept)
    return pending


@pytest.mark.parametrize(
    "rule",
    [
        RULE,
        DecisionRule("binary", ("good", "bad"), 0.3),
        DecisionRule("multiclass", ("low", "mid", "high"), 0.5),
        DecisionRule("regression", (), 0.5),
    ],
    ids=["binary", "threshold", "multiclass", "regression"],
)
@pytest.mark.parametrize("masking", ["hash", "redact"])
def test_parquet_rows_read_back_equal_the_json_lines(rule: DecisionRule, masking: Masking) -> None:
    pending = _random_requests(SIGNATURE, rule)
    rows = _lines(masking, pending, "parquet")
    assert len(rows) > 100
    assert rows == _lines(masking, pending, "jsonl")


@pytest.mark.parametrize("file_format", FORMATS)
def test_every_file_operation_runs_on_the_logs_one_thread(
    tmp_path: Path, file_format: LogFormat
) -> None:
    """Not on the shared pool's threads, where each thread's allocator cache kept its own
    copy of the writer's freed buffers and a worker's memory crept up (issue 18, item 8)."""
    threads: set[str] = set()
    x = RecordEncoder(SIGNATURE).encode(RECORDS)

    async def scenario() -> None:
        log = PredictionLog(
            tmp_path,
            key=KEY,
            masking="hash",
            max_bytes=1 << 20,
            retention_days=30,
            counted=lambda *args: None,
            file_format=file_format,
        )
        sink = log.files

        class Watched:
            def write(self, day: date, pending: PendingRows) -> int:
                threads.add(threading.current_thread().name)
                return sink.write(day, pending)

            def close_expired(self) -> None:
                threads.add(threading.current_thread().name)
                sink.close_expired()

            def close(self) -> None:
                threads.add(threading.current_thread().name)
                sink.close()

        log.files = Watched()
        busy = threading.Event()
        # the shared pool is busy with other work, as the database writers keep it
        others = [asyncio.create_task(asyncio.to_thread(busy.wait, 30)) for _ in range(3)]
        for _ in range(5):
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
            await log.flush()
        await log.close()
        busy.set()
        await asyncio.gather(*others)

    asyncio.run(scenario())
    assert len(threads) == 1
    assert threads.pop().startswith(WRITER_THREAD)
    assert len(list(read_log(log_files(tmp_path, "credit", None, None)))) == 10
