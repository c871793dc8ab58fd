"""Access log lines and request ids, without a server."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import orjson
import pytest

from finmaas.web.access_log import (
    AccessLog,
    RequestTrace,
    _write,
    access_entry,
    format_entry,
    request_id_of,
)

TRACE = RequestTrace("a1b2c3d4000000ff", 0.0, "0123456789abcdef", "credit-risk", 3)


def test_a_line_holds_the_fields_and_the_time_in_utc_milliseconds() -> None:
    entry = (
        1_800_000_001.1239,
        "r-1",
        "POST",
        "/v1/models/credit-risk:predict",
        200,
        0.00041,
        "0123456789abcdef",
        "credit-risk",
        3,
    )
    assert orjson.loads(format_entry(entry)) == {
        "ts": "2027-01-15T08:00:01.123Z",
        "request_id": "r-1",
        "method": "POST",
        "path": "/v1/models/credit-risk:predict",
        "status": 200,
        "ms": 0.41,
        "key_id": "0123456789abcdef",
        "model": "credit-risk",
        "version": 3,
    }


def test_a_request_that_reached_no_model_has_nulls_and_a_long_path_is_cut() -> None:
    anonymous = RequestTrace("r-2", 0.0)
    line = orjson.loads(format_entry(access_entry(anonymous, "GET", "/x" * 300, 404, 0.002)))
    assert (line["key_id"], line["model"], line["version"]) == (None, None, None)
    assert line["path"] == ("/x" * 300)[:200]
    assert line["ts"].endswith("Z")


def test_lines_are_written_whole_in_pieces_of_at_most_4_kib() -> None:
    writes: list[bytes] = []

    class Sink(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            writes.append(bytes(data))
            return len(data)

    entries = [
        access_entry(TRACE, "POST", f"/v1/models/m{i}:predict", 200, 0.001) for i in range(100)
    ]
    _write(Sink(), entries)
    assert len(writes) > 1
    assert all(len(w) <= 4096 and w.endswith(b"\n") for w in writes)
    lines = b"".join(writes).splitlines()
    assert [orjson.loads(line)["path"] for line in lines] == [
        f"/v1/models/m{i}:predict" for i in range(100)
    ]


def test_a_well_formed_client_request_id_is_kept_and_others_replaced() -> None:
    assert request_id_of({b"x-request-id": b"abc-123_X.y"}) == "abc-123_X.y"
    for bad in (b"", b"a" * 65, b"has space", b"\xff"):
        made = request_id_of({b"x-request-id": bad})
        assert len(made) == 16
        int(made, 16)  # hexadecimal, whatever the client sent
        assert made[:8] == request_id_of({})[:8]  # this process's prefix
        assert made != request_id_of({})


def test_a_sink_that_stops_taking_lines_leaves_at_most_max_pending_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines beyond the bound are dropped and counted, never queued (issue 18, item 8)."""
    blocked, release = threading.Event(), threading.Event()
    written: list[bytes] = []

    class StuckPipe(io.BytesIO):
        """A pipe nobody reads until ``release`` is set."""

        def write(self, data: bytes) -> int:  # type: ignore[override]
            blocked.set()
            release.wait(30)
            written.append(bytes(data))
            return len(data)

    async def scenario() -> None:
        access = AccessLog(StuckPipe, max_pending=100)
        await access.start()
        access.record(access_entry(TRACE, "POST", "/first", 200, 0.001))
        # the writer takes the first line and blocks on the pipe
        assert await asyncio.to_thread(blocked.wait, 30)
        for i in range(10_000):
            access.record(access_entry(TRACE, "POST", f"/v1/models/m{i}:predict", 200, 0.001))
            assert access.backlog <= 100
        assert access.backlog == 100
        assert access.dropped == 9_900
        release.set()
        for _ in range(3000):  # the first line reaches the pipe before the rest is flushed
            if written:
                break
            await asyncio.sleep(0.01)
        await access.close()

    with caplog.at_level(logging.WARNING, logger="finmaas.serving"):
        asyncio.run(scenario())
    lines = [orjson.loads(line)["path"] for line in b"".join(written).splitlines()]
    assert lines == ["/first", *(f"/v1/models/m{i}:predict" for i in range(100))]
    assert "access log fell behind: 9900 lines dropped" in caplog.messages
