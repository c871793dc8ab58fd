"""Retention keeps the decision records bounded: a purge deletes what is past it, and
on SQLite the freed pages are reused, so the file stops growing (docs/monitoring.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.monitoring.decision_records import Decision, DecisionStore
from finmaas.registry import Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.tables import decisions

OLD = datetime(2026, 1, 1, tzinfo=UTC)
NEW = datetime(2026, 7, 1, tzinfo=UTC)


def _records(at: datetime, count: int, first: int) -> list[Decision]:
    return [
        Decision(
            at,
            f"{first + i:016x}",
            0,
            f"{(first + i) * 7919:032x}",
            "default",
            "credit-risk",
            1,
            "production",
            0.31,
            "good",
            None,
            "0123456789abcdef",
        )
        for i in range(count)
    ]


def test_a_purge_deletes_only_records_past_retention_and_is_audited(registry: Registry) -> None:
    store = DecisionStore(registry)
    store.add(_records(OLD, 300, 0))
    store.add(_records(NEW, 200, 10_000))
    assert store.purge(NEW - timedelta(days=1), actor="system:retention") == 300
    assert store.count() == 200
    assert store.purge(NEW - timedelta(days=1), actor="system:retention") == 0
    purges = registry.audit_entries(AuditFilter(action="decisions.purge"))
    assert [entry.after["deleted"] for entry in purges] == [300]


def test_on_sqlite_records_written_after_a_purge_reuse_its_pages(
    sqlite_settings: Settings,
) -> None:
    registry = Registry.open(sqlite_settings)
    try:
        store = DecisionStore(registry)
        for batch in range(5):
            store.add(_records(OLD, 2000, batch * 2000))
        pages_before = _pragma(registry, "page_count")
        store.purge(NEW, actor="system:retention")
        assert _pragma(registry, "page_count") == pages_before  # the file keeps its size
        assert _pragma(registry, "freelist_count") >= pages_before // 2  # freed inside it
        for batch in range(5):
            store.add(_records(NEW, 2000, 100_000 + batch * 2000))
        assert store.count() == 10_000
        assert _pragma(registry, "page_count") <= pages_before + 8  # refilled, not grown
    finally:
        registry.close()


def _pragma(registry: Registry, name: str) -> int:
    with registry.read() as conn:
        return int(conn.execute(sa.text(f"PRAGMA {name}")).scalar_one())


def test_a_record_stored_by_an_earlier_build_reads_back_named_for_what_it_is(
    registry: Registry,
) -> None:
    """Earlier builds wrote the same ``score`` column; the API names its number
    ``probability`` (``value`` for a regression), never ``score`` (V1's points)."""
    with registry.write() as conn:
        conn.execute(
            sa.insert(decisions).values(
                recorded_at=NEW,
                request_id="earlier",
                row=0,
                subject=None,
                tenant="default",
                model="credit-risk",
                version=1,
                alias="production",
                score=0.31,
                decision="good",
                reasons=None,
                key_id=None,
            )
        )
    [found] = DecisionStore(registry).find("earlier")
    assert found.output == 0.31
    shown = found.to_json("binary")
    assert (shown["probability"], "score" in shown) == (0.31, False)
    assert found.to_json("regression")["value"] == 0.31
