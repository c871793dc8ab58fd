"""What monitoring reads of a loaded version, as protocols: the serving pool's versions
fit them, and monitoring (a lower floor of the house) never imports serving.

``Counted`` is what the drift recorder moves to the database; ``Served`` adds what the
metrics exporter shows (queued rows, artifact size).
"""

from __future__ import annotations

from typing import Protocol

from finmaas.monitoring.counts import LiveCounts
from finmaas.registry import ModelVersion


class QueueStats(Protocol):
    @property
    def queued_rows(self) -> int:
        """Rows waiting for a batch."""
        ...


class Queue(Protocol):
    """A batcher, as far as its gauge goes."""

    @property
    def stats(self) -> QueueStats: ...


class Counted(Protocol):
    """A loaded version whose served rows are counted for drift."""

    @property
    def version(self) -> ModelVersion: ...

    @property
    def name(self) -> str: ...

    @property
    def number(self) -> int: ...

    @property
    def live(self) -> LiveCounts:
        """What the version served, pending binning."""
        ...


class Served(Counted, Protocol):
    """A loaded version as the metrics show it."""

    @property
    def memory(self) -> int:
        """The artifact's size in bytes."""
        ...

    @property
    def batcher(self) -> Queue: ...

    @property
    def explain_batcher(self) -> Queue | None:
        """None when the version has no explanation method."""
        ...
