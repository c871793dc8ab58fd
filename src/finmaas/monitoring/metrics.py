"""Service metrics: counted on the request path, rendered for Prometheus at scrape time.

The request path only increments plain counters and bucket counts of this
process (a dict lookup and two additions, well under a microsecond);
prometheus-client's own ``Counter.labels(...).inc()`` plus
``Histogram.observe`` cost about 3 µs per request here, more in its mmap-backed
multi-process mode. At scrape time a custom collector turns the counts into
metric families and prometheus-client writes the text format.

With several workers each one publishes a snapshot of its counts to a file of
its own in a directory the ``serve`` command creates (every second and at
shutdown); the worker that answers a scrape adds up its live counts and every
other worker's latest file. Counters of a worker that died stay in the sum (a
counter never goes down); its gauges are dropped.

Label values are never request input: ``model`` and ``version`` name a
version the server resolved (empty when a request named none or an unknown
one), ``protocol`` is one of a fixed set, ``status`` an HTTP status.
"""

from __future__ import annotations

import contextlib
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from finmaas.background import process_alive

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds; a tabular model answers in about a millisecond, so the low end is fine."""
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
"""Rows per model call."""


class Histogram:
    """Bucket counts (``le`` bounds, the last bucket +Inf) and the sum of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def add(self, counts: list[int], total: float) -> None:
        for index, count in enumerate(counts):
            self.counts[index] += count
        self.total += total

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, as Prometheus wants them."""
        running, out = 0, []  # type: tuple[int, list[tuple[str, float]]]
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class BatchTimings:
    """Model time and rows of every call one batcher makes (observed on the event loop)."""

    __slots__ = ("rows", "seconds")

    def __init__(self) -> None:
        self.seconds = Histogram(LATENCY_BUCKETS)
        self.rows = Histogram(BATCH_BUCKETS)

    def observe(self, rows: int, seconds: float) -> None:
        self.seconds.observe(seconds)
        self.rows.observe(rows)


Gauges = dict[str, list[list[Any]]]
"""Gauge name → rows of label values and a value, read when a snapshot is taken."""


class ServiceMetrics:
    """This process's counts. Only the event loop touches them, so no lock is taken."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str | None, int | None, str, int], Histogram] = {}
        """Latency per model, version, protocol and status; labels become text at snapshot."""
        self.batches: dict[tuple[str, str, str], BatchTimings] = {}
        self.rejections: dict[tuple[str, str], int] = {}
        self.explained: dict[tuple[str, str], int] = {}
        self.logged: dict[tuple[str, str], int] = {}

    def observe_request(
        self, protocol: str, status: int, model: str | None, version: int | None, seconds: float
    ) -> None:
        """One answered request: a single dict lookup and two additions (it runs on
        every request; the request count is the histogram's count)."""
        key = (model, version, protocol, status)
        histogram = self.requests.get(key)
        if histogram is None:
            histogram = self.requests[key] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def reject(self, model: str, reason: str) -> None:
        key = (model, reason)
        self.rejections[key] = self.rejections.get(key, 0) + 1

    def explain(self, model: str, version: int, rows: int) -> None:
        key = (model, str(version))
        self.explained[key] = self.explained.get(key, 0) + rows

    def log_rows(self, model: str, outcome: str, rows: int) -> None:
        """Prediction-log rows ``written`` or ``dropped``."""
        key = (model, outcome)
        self.logged[key] = self.logged.get(key, 0) + rows

    def batch_timings(self, model: str, version: int, kind: str) -> BatchTimings:
        """The timings a version's batcher observes into (``predict`` or ``explain``);
        kept after the version is unloaded, since counters never go down."""
        key = (model, str(version), kind)
        timings = self.batches.get(key)
        if timings is None:
            timings = self.batches[key] = BatchTimings()
        return timings

    def snapshot(self, gauges: Gauges) -> dict[str, Any]:
        """Everything, as JSON-ready lists, with this moment's gauges."""
        return {
            "pid": os.getpid(),
            "requests": [
                [*_labels(key), key[2], str(key[3]), sum(h.counts)]
                for key, h in self.requests.items()
            ],
            "latency": _latency(self.requests),
            "model_seconds": [
                [*key, t.seconds.counts, t.seconds.total] for key, t in self.batches.items()
            ],
            "batch_rows": [[*key, t.rows.counts, t.rows.total] for key, t in self.batches.items()],
            "rejections": [[*key, count] for key, count in self.rejections.items()],
            "explained": [[*key, count] for key, count in self.explained.items()],
            "logged": [[*key, count] for key, count in self.logged.items()],
            "gauges": gauges,
        }


def _labels(key: tuple[str | None, int | None, str, int]) -> tuple[str, str]:
    """``model`` and ``version`` label values: empty when the request named none."""
    model, version = key[0], key[1]
    return model or "", "" if version is None else str(version)


def _latency(
    requests: dict[tuple[str | None, int | None, str, int], Histogram],
) -> list[list[Any]]:
    """The latency histograms per model, version and protocol (statuses added up)."""
    merged: dict[tuple[str, str, str], Histogram] = {}
    for key, histogram in requests.items():
        labels = (*_labels(key), key[2])
        into = merged.get(labels)
        if into is None:
            into = merged[labels] = Histogram(LATENCY_BUCKETS)
        into.add(histogram.counts, histogram.total)
    return [[*key, h.counts, h.total] for key, h in merged.items()]


@dataclass(frozen=True)
class Family:
    """How one snapshot field becomes a metric family."""

    field: str
    name: str
    help: str
    labels: tuple[str, ...]
    kind: str  # counter | histogram
    buckets: tuple[float, ...] = ()


FAMILIES: tuple[Family, ...] = (
    Family(
        "requests",
        "finmaas_requests",
        "HTTP requests answered, by the model version served, protocol and status.",
        ("model", "version", "protocol", "status"),
        "counter",
    ),
    Family(
        "latency",
        "finmaas_request_duration_seconds",
        "Time from the request's arrival to its response, end to end in the server.",
        ("model", "version", "protocol"),
        "histogram",
        LATENCY_BUCKETS,
    ),
    Family(
        "model_seconds",
        "finmaas_model_duration_seconds",
        "Time of one model call (a batch) on a model thread.",
        ("model", "version", "kind"),
        "histogram",
        LATENCY_BUCKETS,
    ),
    Family(
        "batch_rows",
        "finmaas_batch_rows",
        "Rows per model call: how much the adaptive batcher joined.",
        ("model", "version", "kind"),
        "histogram",
        BATCH_BUCKETS,
    ),
    Family(
        "rejections",
        "finmaas_rejections",
        "Requests refused by a limit: requests or rows per minute, quota, concurrency cap, "
        "or a full model queue.",
        ("model", "reason"),
        "counter",
    ),
    Family(
        "explained",
        "finmaas_explained_rows",
        "Rows explained (contributions computed).",
        ("model", "version"),
        "counter",
    ),
    Family(
        "logged",
        "finmaas_prediction_log_rows",
        "Sampled rows the prediction log wrote, or dropped because its writer fell behind.",
        ("model", "outcome"),
        "counter",
    ),
)

GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "finmaas_queue_rows": ("Rows waiting for a model thread now.", ("model", "version", "kind")),
    "finmaas_loaded_versions": (
        "Workers holding the version loaded.",
        ("model", "version"),
    ),
    "finmaas_model_artifact_bytes": (
        "Artifact size of a loaded version (the pool's stand-in for its memory), per worker "
        "that holds it.",
        ("model", "version"),
    ),
    "finmaas_decision_backlog": ("Decision records waiting to be written.", ()),
    "finmaas_prediction_log_backlog": ("Prediction-log rows waiting to be written.", ()),
    "finmaas_workers": ("Worker processes whose metrics this answer includes.", ()),
}


@dataclass
class Merged:
    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], Histogram]] = field(default_factory=dict)
    gauges: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)


def merge(snapshots: Iterable[tuple[dict[str, Any], bool]]) -> Merged:
    """Add up snapshots; ``(snapshot, alive)``: a dead worker's gauges are left out."""
    merged = Merged()
    workers = 0
    for snapshot, alive in snapshots:
        for family in FAMILIES:
            width = len(family.labels)
            if family.kind == "counter":
                counters = merged.counters.setdefault(family.field, {})
                for row in snapshot.get(family.field, ()):
                    key = tuple(row[:width])
                    counters[key] = counters.get(key, 0) + row[width]
            else:
                histograms = merged.histograms.setdefault(family.field, {})
                for row in snapshot.get(family.field, ()):
                    key = tuple(row[:width])
                    histogram = histograms.get(key)
                    if histogram is None:
                        histogram = histograms[key] = Histogram(family.buckets)
                    histogram.add(row[width], row[width + 1])
        if alive:
            workers += 1
            for name, rows in snapshot.get("gauges", {}).items():
                values = merged.gauges.setdefault(name, {})
                for row in rows:
                    key = tuple(row[:-1])
                    values[key] = values.get(key, 0) + row[-1]
    merged.gauges["finmaas_workers"] = {(): workers}
    return merged


def families(merged: Merged, keep: Any = None) -> Iterator[Metric]:
    """Metric families of a merged snapshot; ``keep(model)`` filters rows by model."""
    for family in FAMILIES:
        model_at = family.labels.index("model")
        if family.kind == "counter":
            counter = CounterMetricFamily(family.name, family.help, labels=family.labels)
            for key, value in sorted(merged.counters.get(family.field, {}).items()):
                if keep is None or keep(key[model_at]):
                    counter.add_metric(list(key), value)
            yield counter
        else:
            histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
            for key, h in sorted(merged.histograms.get(family.field, {}).items()):
                if keep is None or keep(key[model_at]):
                    histogram.add_metric(list(key), h.buckets(), h.total)
            yield histogram
    for name, (text, labels) in GAUGES.items():
        gauge = GaugeMetricFamily(name, text, labels=labels)
        for key, value in sorted(merged.gauges.get(name, {}).items()):
            if keep is None or not labels or keep(key[0]):
                gauge.add_metric(list(key), value)
        yield gauge


class SharedSnapshots:
    """Where the workers of one server leave their snapshots for each other."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Replace this worker's file (write, then rename: readers never see half)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{self.pid}.json"
        partial = target.with_suffix(".tmp")
        partial.write_bytes(orjson.dumps(snapshot))
        partial.replace(target)

    def others(self) -> list[tuple[dict[str, Any], bool]]:
        """Every other worker's latest snapshot, and whether that worker still runs."""
        out = []
        for path in self.directory.glob("*.json"):
            if not path.stem.isdigit() or int(path.stem) == self.pid:
                continue
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                out.append((orjson.loads(path.read_bytes()), process_alive(int(path.stem))))
        return out
