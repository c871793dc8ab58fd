"""Storage of metered usage: per key × model × version × UTC day.

Counters are added with one upsert per row (``INSERT … ON CONFLICT DO UPDATE``
on SQLite and PostgreSQL), so flushes from many workers add up exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from finmaas.registry.registry import Registry
from finmaas.registry.tables import usage

COUNTERS = ("requests", "rows", "errors", "latency_us")
CSV_COLUMNS = (
    "key_id",
    "tenant",
    "model",
    "version",
    "day",
    "requests",
    "rows",
    "errors",
    "latency_ms_total",
)


@dataclass(frozen=True)
class UsageRow:
    key_id: str
    tenant: str
    model: str
    version: int
    day: date
    requests: int
    rows: int
    errors: int
    latency_us: int


class UsageStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, rows: Iterable[UsageRow]) -> None:
        """Add these counts to what is stored, in one transaction."""
        values = [row.__dict__ for row in rows]
        if not values:
            return
        with self.registry.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(usage)
            statement = statement.on_conflict_do_update(
                index_elements=["key_id", "model", "version", "day"],
                set_={name: getattr(usage.c, name) + statement.excluded[name] for name in COUNTERS},
            )
            for value in values:
                conn.execute(statement, value)

    def query(
        self,
        *,
        tenant: str | None = None,
        key_id: str | None = None,
        model: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[UsageRow]:
        """Stored rows, oldest day first; ``until`` is exclusive."""
        query = sa.select(usage).order_by(
            usage.c.day, usage.c.tenant, usage.c.key_id, usage.c.model, usage.c.version
        )
        if tenant is not None:
            query = query.where(usage.c.tenant == tenant)
        if key_id is not None:
            query = query.where(usage.c.key_id == key_id)
        if model is not None:
            query = query.where(usage.c.model == model)
        if since is not None:
            query = query.where(usage.c.day >= since)
        if until is not None:
            query = query.where(usage.c.day < until)
        with self.registry.read() as conn:
            return [UsageRow(**row) for row in conn.execute(query).mappings()]

    def rows_since(self, since: date) -> dict[str, int]:
        """Rows predicted per key from ``since`` on (the month so far, for quotas)."""
        query = (
            sa.select(usage.c.key_id, sa.func.sum(usage.c.rows))
            .where(usage.c.day >= since)
            .group_by(usage.c.key_id)
        )
        with self.registry.read() as conn:
            return {key_id: int(total or 0) for key_id, total in conn.execute(query)}


def usage_csv(rows: Sequence[UsageRow]) -> str:
    """The billing export: one line per key × model × version × day, latency in ms."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.key_id,
                row.tenant,
                row.model,
                row.version,
                row.day.isoformat(),
                row.requests,
                row.rows,
                row.errors,
                round(row.latency_us / 1000, 3),
            ]
        )
    return out.getvalue()


def usage_report(rows: Sequence[UsageRow]) -> dict[str, Any]:
    """Rows and their totals as JSON-ready values (for the API and ``finmaas usage --json``)."""
    return {
        "usage": [{**row.__dict__, "day": row.day.isoformat()} for row in rows],
        "totals": {name: sum(getattr(row, name) for row in rows) for name in COUNTERS},
    }
