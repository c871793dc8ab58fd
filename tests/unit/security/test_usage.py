"""UsageMeter over a real UsageStore: exact counters, and nothing lost when a flush fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from finmaas.errors import Unavailable
from finmaas.registry import Registry
from finmaas.registry.key_store import KeyRecord, KeyStore
from finmaas.registry.usage import UsageRow, UsageStore
from finmaas.security.key_secrets import issue_key
from finmaas.security.usage import UsageMeter

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
TODAY = date(2026, 3, 10)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def keys(registry: Registry) -> KeyStore:
    return KeyStore(registry)


@pytest.fixture
def usage(registry: Registry) -> UsageStore:
    return UsageStore(registry)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def meter(usage: UsageStore, keys: KeyStore, clock: Clock) -> UsageMeter:
    return UsageMeter(usage, keys, interval=3600, clock=clock)


@pytest.fixture
def alice(keys: KeyStore) -> KeyRecord:
    return issue_key(keys, name="alice", role="consumer", actor="a", tenant="retail").record


@pytest.fixture
def bob(keys: KeyStore) -> KeyRecord:
    return issue_key(keys, name="bob", role="consumer", actor="a", tenant="corporate").record


def flush(meter: UsageMeter) -> int:
    return asyncio.run(meter.flush())


def row(key: KeyRecord, model: str, version: int, *counts: int, day: date = TODAY) -> UsageRow:
    return UsageRow(key.id, key.tenant, model, version, day, *counts)


def fail_adds(monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[list[UsageRow]]:
    attempts: list[list[UsageRow]] = []

    def add(self: UsageStore, rows: object) -> None:
        attempts.append(list(rows))  # type: ignore[call-overload]
        raise error

    monkeypatch.setattr(UsageStore, "add", add)
    return attempts


def test_flush_writes_exact_counters(
    meter: UsageMeter, usage: UsageStore, keys: KeyStore, alice: KeyRecord, bob: KeyRecord
) -> None:
    meter.record(alice, "credit-risk", 1, 10, True, 1500)
    meter.record(alice, "credit-risk", 1, 5, False, 700)
    meter.record(alice, "credit-risk", 2, 1, True, 300)
    meter.record(bob, "fraud", 3, 100, True, 9000)
    assert meter.month_rows(alice.id) == 16
    assert meter.month_rows(bob.id) == 100

    assert flush(meter) == 4

    assert usage.query() == [
        row(bob, "fraud", 3, 1, 100, 0, 9000),
        row(alice, "credit-risk", 1, 2, 15, 1, 2200),
        row(alice, "credit-risk", 2, 1, 1, 0, 300),
    ]
    assert usage.query(tenant="retail", model="credit-risk", key_id=alice.id) == [
        row(alice, "credit-risk", 1, 2, 15, 1, 2200),
        row(alice, "credit-risk", 2, 1, 1, 0, 300),
    ]
    assert keys.get(alice.id).last_used_at == NOW
    assert keys.get(bob.id).last_used_at == NOW
    assert meter.month_rows(alice.id) == 16
    assert meter.month_rows(bob.id) == 100
    assert flush(meter) == 0  # nothing new


def test_two_flushes_add_up(
    meter: UsageMeter, usage: UsageStore, keys: KeyStore, clock: Clock, alice: KeyRecord
) -> None:
    meter.record(alice, "m", 1, 10, True, 100)
    assert flush(meter) == 1
    clock.now = NOW.replace(hour=13)
    meter.record(alice, "m", 1, 20, False, 200)
    meter.record(alice, "m", 1, 30, True, 300)
    assert flush(meter) == 2
    assert usage.query() == [row(alice, "m", 1, 3, 60, 1, 600)]
    assert keys.get(alice.id).last_used_at == NOW.replace(hour=13)
    assert meter.month_rows(alice.id) == 60


def test_counts_are_kept_per_utc_day(
    meter: UsageMeter, usage: UsageStore, clock: Clock, alice: KeyRecord
) -> None:
    meter.record(alice, "m", 1, 1, True, 1)
    clock.now = datetime(2026, 3, 11, 0, 0, 1, tzinfo=UTC)
    meter.record(alice, "m", 1, 2, True, 2)
    assert flush(meter) == 2
    assert usage.query() == [
        row(alice, "m", 1, 1, 1, 0, 1),
        row(alice, "m", 1, 1, 2, 0, 2, day=date(2026, 3, 11)),
    ]
    assert usage.query(since=date(2026, 3, 11)) == [
        row(alice, "m", 1, 1, 2, 0, 2, day=date(2026, 3, 11))
    ]
    assert usage.query(until=date(2026, 3, 11)) == [row(alice, "m", 1, 1, 1, 0, 1)]


def test_a_failed_flush_keeps_every_count(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    meter: UsageMeter,
    usage: UsageStore,
    keys: KeyStore,
    alice: KeyRecord,
    bob: KeyRecord,
) -> None:
    meter.record(alice, "m", 1, 10, True, 100)
    meter.record(bob, "m", 1, 7, False, 70)
    attempts = fail_adds(monkeypatch, Unavailable("database down"))

    with caplog.at_level(logging.WARNING, logger="finmaas.security"):
        assert flush(meter) == 0
    assert len(attempts) == 1
    assert sorted(r.rows for r in attempts[0]) == [7, 10]
    assert [r.getMessage() for r in caplog.records] == [
        "usage not flushed, kept for the next try: database down"
    ]
    assert meter.month_rows(alice.id) == 10
    assert meter.month_rows(bob.id) == 7

    meter.record(alice, "m", 1, 5, True, 50)
    assert flush(meter) == 0
    assert len(attempts) == 2
    assert meter.month_rows(alice.id) == 15

    monkeypatch.undo()
    assert usage.query() == []
    assert keys.get(alice.id).last_used_at is None

    assert flush(meter) == 3
    assert usage.query() == [
        row(bob, "m", 1, 1, 7, 1, 70),
        row(alice, "m", 1, 2, 15, 0, 150),
    ]
    assert keys.get(alice.id).last_used_at == NOW
    assert meter.month_rows(alice.id) == 15
    assert meter.month_rows(bob.id) == 7
    assert flush(meter) == 0


def test_counts_recorded_during_a_failing_flush_are_merged(
    monkeypatch: pytest.MonkeyPatch, meter: UsageMeter, usage: UsageStore, alice: KeyRecord
) -> None:
    meter.record(alice, "m", 1, 10, True, 100)

    def add(self: UsageStore, rows: object) -> None:
        meter.record(alice, "m", 1, 4, False, 40)  # answered while the flush was out
        meter.record(alice, "other", 2, 1, True, 10)
        raise Unavailable("database down")

    monkeypatch.setattr(UsageStore, "add", add)
    assert flush(meter) == 0
    monkeypatch.undo()
    assert meter.month_rows(alice.id) == 15
    assert flush(meter) == 3
    assert usage.query() == [
        row(alice, "m", 1, 2, 14, 1, 140),
        row(alice, "other", 2, 1, 1, 0, 10),
    ]


def test_month_rows_is_stored_plus_pending(
    meter: UsageMeter, usage: UsageStore, alice: KeyRecord, bob: KeyRecord
) -> None:
    usage.add(
        [
            row(alice, "m", 1, 3, 100, 0, 30, day=date(2026, 3, 1)),
            row(alice, "n", 1, 1, 20, 0, 30, day=date(2026, 3, 9)),
            row(alice, "m", 1, 9, 1000, 0, 90, day=date(2026, 2, 28)),  # last month
            row(bob, "m", 1, 1, 5, 0, 10, day=date(2026, 3, 2)),
        ]
    )
    assert usage.rows_since(date(2026, 3, 1)) == {alice.id: 120, bob.id: 5}
    assert usage.rows_since(date(2026, 2, 1)) == {alice.id: 1120, bob.id: 5}

    async def scenario() -> None:
        await meter.start()
        try:
            assert meter.month_rows(alice.id) == 120
            assert meter.month_rows(bob.id) == 5
            assert meter.month_rows("ffffffffffffffff") == 0
            meter.record(alice, "m", 1, 7, True, 1)
            assert meter.month_rows(alice.id) == 127
            assert await meter.flush() == 1
            assert meter.month_rows(alice.id) == 127
            meter.record(alice, "m", 1, 3, True, 1)
            assert meter.month_rows(alice.id) == 130
        finally:
            await meter.close()  # flushes what is left
        assert meter.month_rows(alice.id) == 130

    asyncio.run(scenario())
    assert usage.rows_since(date(2026, 3, 1)) == {alice.id: 130, bob.id: 5}
    assert usage.query(key_id=alice.id, since=TODAY) == [row(alice, "m", 1, 2, 10, 0, 2)]


def test_usage_store_add_upserts(usage: UsageStore, alice: KeyRecord) -> None:
    usage.add([])
    usage.add([row(alice, "m", 1, 1, 2, 3, 4)])
    usage.add([row(alice, "m", 1, 10, 20, 30, 40), row(alice, "m", 2, 1, 1, 1, 1)])
    assert usage.query() == [row(alice, "m", 1, 11, 22, 33, 44), row(alice, "m", 2, 1, 1, 1, 1)]


def test_month_rows_survive_a_failed_key_touch(
    monkeypatch: pytest.MonkeyPatch, meter: UsageMeter, usage: UsageStore, alice: KeyRecord
) -> None:
    """When ``keys.touch`` fails after the usage was written, the flushed rows still count."""

    def touch(self: KeyStore, last_used: object) -> None:
        raise Unavailable("database down")

    meter.record(alice, "m", 1, 10, True, 100)
    monkeypatch.setattr(KeyStore, "touch", touch)
    assert flush(meter) == 1
    assert usage.rows_since(date(2026, 3, 1)) == {alice.id: 10}  # the rows were stored
    assert meter.month_rows(alice.id) == 10


def test_an_unexpected_store_error_keeps_the_counts(
    monkeypatch: pytest.MonkeyPatch, meter: UsageMeter, usage: UsageStore, alice: KeyRecord
) -> None:
    """A store error of any kind keeps the counts for the next flush."""
    meter.record(alice, "m", 1, 10, True, 100)
    fail_adds(
        monkeypatch,
        sa.exc.InternalError(
            "INSERT INTO usage …", {}, Exception("cannot execute INSERT in a read-only transaction")
        ),
    )
    with contextlib.suppress(sa.exc.InternalError):  # the flush may fail; the counts must not
        flush(meter)
    monkeypatch.undo()
    assert flush(meter) == 1
    assert usage.query() == [row(alice, "m", 1, 1, 10, 0, 100)]


def test_close_during_a_flush_returns_only_when_every_count_is_stored(
    monkeypatch: pytest.MonkeyPatch, usage: UsageStore, keys: KeyStore, alice: KeyRecord
) -> None:
    """A stop that lands while the background flush writes must wait for that write:
    the server closes the database right after the meter."""
    entered, release = threading.Event(), threading.Event()
    add = UsageStore.add

    def slow_add(self: UsageStore, rows: list[UsageRow]) -> None:
        entered.set()
        release.wait(60)
        add(self, rows)

    monkeypatch.setattr(UsageStore, "add", slow_add)
    meter = UsageMeter(usage, keys, interval=0.01)

    async def scenario() -> None:
        await meter.start()
        meter.record(alice, "m", 1, 2, True, 100)
        await asyncio.to_thread(entered.wait, 60)
        closing = asyncio.create_task(meter.close())
        await asyncio.sleep(0.05)
        release.set()
        await closing
        stored = usage.query()  # before the loop ends, which would wait for the writer thread
        assert [(row.requests, row.rows) for row in stored] == [(1, 2)]

    asyncio.run(scenario())
