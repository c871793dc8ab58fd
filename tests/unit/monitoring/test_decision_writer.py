"""DecisionWriter: batches off the request path, back-pressure instead of loss, retries."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finmaas.errors import Invalid
from finmaas.monitoring import decision_records as module
from finmaas.monitoring.decision_records import (
    Decision,
    DecisionWriter,
    stored_reasons,
    subject_ids,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _decision(row: int) -> Decision:
    return Decision(NOW, "r1", row, None, "default", "m", 1, "production", 0.5, "bad", None, "k")


class SlowStore:
    """Blocks each insert until released; can fail the first ``failures`` inserts."""

    def __init__(self, failures: int = 0) -> None:
        self.written: list[Decision] = []
        self.release = threading.Event()
        self.failures = failures
        self.purged = 0

    def add(self, records: list[Decision]) -> None:
        self.release.wait(5)
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.written.extend(records)

    def purge(self, before: datetime, *, actor: Any) -> int:
        self.purged += 1
        return 0


def _writer(store: SlowStore, max_pending: int) -> DecisionWriter:
    return DecisionWriter(
        store,  # type: ignore[arg-type]
        max_pending=max_pending,
        retention=timedelta(days=183),
        now=lambda: NOW,
    )


def test_a_full_writer_makes_requests_wait_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "FLUSH_INTERVAL", 0.01)

    async def scenario() -> None:
        store = SlowStore()
        writer = _writer(store, max_pending=10)
        await writer.start()
        await writer.record([_decision(i) for i in range(10)])
        waiting = asyncio.create_task(writer.record([_decision(10)]))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # back-pressure: the 11th waits for the writer
        assert writer.backlog == 10
        store.release.set()
        await asyncio.wait_for(waiting, 5)
        await writer.close()
        assert [d.row for d in store.written] == list(range(11))
        assert writer.backlog == 0
        assert store.purged == 1

    asyncio.run(scenario())


def test_a_failed_insert_is_retried_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "FLUSH_INTERVAL", 0.01)
    monkeypatch.setattr(module, "RETRY_AFTER", 0.01)

    async def scenario() -> None:
        store = SlowStore(failures=2)
        store.release.set()
        writer = _writer(store, max_pending=100)
        await writer.start()
        await writer.record([_decision(i) for i in range(3)])
        await writer.record([_decision(i) for i in range(3, 5)])
        await writer.close()
        assert [d.row for d in store.written] == [0, 1, 2, 3, 4]

    asyncio.run(scenario())


def test_a_single_request_larger_than_the_limit_still_goes_through() -> None:
    async def scenario() -> None:
        store = SlowStore()
        store.release.set()
        writer = _writer(store, max_pending=2)
        await writer.start()
        await asyncio.wait_for(writer.record([_decision(i) for i in range(5)]), 5)
        await writer.close()
        assert len(store.written) == 5

    asyncio.run(scenario())


def test_subject_ids_are_one_per_row() -> None:
    assert subject_ids(None, 2) == [None, None]
    assert subject_ids(b"cust-1, cust:2", 2) == ["cust-1", "cust:2"]


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (
            b"a,b",
            3,
            "X-Subject-ID names 2 subject(s) but the request has 3 row(s); "
            "send one id per row, comma-separated",
        ),
        (b"a b", 1, "each X-Subject-ID must be 1-128 letters, digits or . _ : @ -"),
        (b"a,,b", 3, "each X-Subject-ID must be 1-128 letters, digits or . _ : @ -"),
        (b"x" * 129, 1, "each X-Subject-ID must be 1-128 letters, digits or . _ : @ -"),
    ],
)
def test_bad_subject_ids_are_refused(header: bytes, rows: int, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        subject_ids(header, rows)
    assert str(raised.value) == message


def test_stored_reasons_leave_out_the_applicants_values() -> None:
    explanation = {
        "reasons": [
            {"feature": "age", "value": 23, "contribution": 0.4, "text": "Age"},
        ]
    }
    assert stored_reasons(explanation) == [{"feature": "age", "contribution": 0.4, "text": "Age"}]
