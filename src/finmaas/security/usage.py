"""Usage metering: counters per key × model × version × UTC day, flushed in the background.

``record`` is a few dictionary updates on the event loop. A background task
adds the counters to the database every ``interval`` seconds and once more
on shutdown; a flush that fails keeps its counts for the next one, so a clean
stop loses nothing that was answered. The meter also knows each key's rows so
far this month (stored total plus what is not flushed yet), for quotas.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from finmaas.background import cancel, every
from finmaas.errors import FinmaasError
from finmaas.registry.key_store import KeyRecord, KeyStore
from finmaas.registry.usage import UsageRow, UsageStore

log = logging.getLogger("finmaas.security")

_Key = tuple[str, str, str, int, date]


class UsageMeter:
    def __init__(
        self,
        usage: UsageStore,
        keys: KeyStore,
        *,
        interval: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.usage = usage
        self.keys = keys
        self.interval = interval
        self.clock = clock
        self._counts: dict[_Key, list[int]] = {}
        self._last_used: dict[str, datetime] = {}
        self._month_base: dict[str, int] = {}
        self._month_pending: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(
        self, key: KeyRecord, model: str, version: int, rows: int, ok: bool, latency_us: int
    ) -> None:
        now = self.clock()
        slot = (key.id, key.tenant, model, version, now.date())
        counts = self._counts.get(slot)
        if counts is None:
            counts = self._counts[slot] = [0, 0, 0, 0]
        counts[0] += 1
        counts[1] += rows
        counts[2] += 0 if ok else 1
        counts[3] += latency_us
        self._month_pending[key.id] = self._month_pending.get(key.id, 0) + rows
        self._last_used[key.id] = now

    def month_rows(self, key_id: str) -> int:
        return self._month_base.get(key_id, 0) + self._month_pending.get(key_id, 0)

    async def start(self) -> None:
        await self._load_month()
        self._task = every(
            self.interval,
            self.flush,
            name="finmaas-usage-flush",
            log=log,
            failed="usage flush failed",
        )

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.flush()

    async def flush(self) -> int:
        """Write what was counted since the last flush; return the requests written."""
        async with self._lock:
            counts, self._counts = self._counts, {}
            last_used, self._last_used = self._last_used, {}
            if not counts:
                return 0
            rows = [
                UsageRow(key_id, tenant, model, version, day, *values)
                for (key_id, tenant, model, version, day), values in counts.items()
            ]
            try:
                await asyncio.to_thread(self.usage.add, rows)
            except Exception as exc:  # whatever failed, the counts wait for the next flush
                self._merge_back(counts, last_used)
                log.warning("usage not flushed, kept for the next try: %s", exc)
                return 0
            month = self.clock().date().replace(day=1)
            for row in rows:
                # Flushed rows move from pending to stored, so month_rows stays whole even
                # if the re-read below fails.
                self._month_pending[row.key_id] -= row.rows
                if row.day >= month:
                    self._month_base[row.key_id] = self._month_base.get(row.key_id, 0) + row.rows
            try:
                await asyncio.to_thread(self.keys.touch, last_used)
                await self._load_month()
            except FinmaasError as exc:
                log.warning("could not refresh key usage: %s", exc)
            return sum(row.requests for row in rows)

    def _merge_back(self, counts: dict[_Key, list[int]], last_used: dict[str, datetime]) -> None:
        for slot, values in counts.items():
            mine = self._counts.setdefault(slot, [0, 0, 0, 0])
            for index, value in enumerate(values):
                mine[index] += value
        for key_id, at in last_used.items():
            self._last_used.setdefault(key_id, at)

    async def _load_month(self) -> None:
        today = self.clock().date()
        self._month_base = await asyncio.to_thread(self.usage.rows_since, today.replace(day=1))
