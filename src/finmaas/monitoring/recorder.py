"""Moves live bin counts from the loaded versions to the database, off the request path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from finmaas.background import cancel, every
from finmaas.errors import FinmaasError
from finmaas.monitoring.loaded import Counted
from finmaas.monitoring.store import DriftStore

log = logging.getLogger("finmaas.monitoring")


class DriftRecorder:
    """Every ``interval`` seconds (and on close), bins what each loaded version
    served since the last flush and adds it to the stored counts of the UTC day.

    Counts are statistics, not bills: a flush the database refuses is logged
    and dropped rather than retried.
    """

    def __init__(
        self, loaded: Callable[[], Iterable[Counted]], store: DriftStore, interval: float
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = every(
            self.interval,
            self.flush,
            name="finmaas-drift-recorder",
            log=log,
            failed="drift flush failed",
        )

    async def close(self) -> None:
        await cancel(self._task)
        await self.flush()

    async def flush(self) -> None:
        day = datetime.now(UTC).date()
        for model in list(self.loaded()):
            batches = model.live.take()
            if not batches:
                continue
            try:
                counts = await asyncio.to_thread(model.live.count, batches)
                await asyncio.to_thread(self.store.add, model.name, model.number, day, counts)
            except FinmaasError as exc:
                log.warning("could not store drift counts of %s: %s", model.version.ref, exc)
