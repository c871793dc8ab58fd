"""Storage of live bin counts per model × version × UTC day × input × bin.

Counts are added with one upsert per bin (``INSERT … ON CONFLICT DO UPDATE``
on SQLite and PostgreSQL), so flushes from many workers add up exactly, and a
restart keeps the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from finmaas.registry import Registry
from finmaas.registry.tables import drift_counts


class DriftStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, model: str, version: int, day: date, counts: Mapping[str, np.ndarray]) -> None:
        """Add one flush's counts, in one transaction."""
        values = [
            {
                "model": model,
                "version": version,
                "day": day,
                "feature": feature,
                "bin": index,
                "count": int(count),
            }
            for feature, bins in counts.items()
            for index, count in enumerate(bins.tolist())
            if count
        ]
        if not values:
            return
        with self.registry.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(drift_counts)
            statement = statement.on_conflict_do_update(
                index_elements=["model", "version", "day", "feature", "bin"],
                set_={"count": drift_counts.c.count + statement.excluded["count"]},
            )
            conn.execute(statement, values)

    def window(
        self, model: str, version: int, since: date, until: date
    ) -> dict[str, dict[int, int]]:
        """Summed counts per input and bin for the days ``since`` ≤ day < ``until``."""
        query = (
            sa.select(drift_counts.c.feature, drift_counts.c.bin, sa.func.sum(drift_counts.c.count))
            .where(
                drift_counts.c.model == model,
                drift_counts.c.version == version,
                drift_counts.c.day >= since,
                drift_counts.c.day < until,
            )
            .group_by(drift_counts.c.feature, drift_counts.c.bin)
        )
        out: dict[str, dict[int, int]] = {}
        with self.registry.read() as conn:
            for feature, index, total in conn.execute(query):
                out.setdefault(feature, {})[int(index)] = int(total)
        return out
