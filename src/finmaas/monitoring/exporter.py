"""``GET /metrics``: this worker's counts, the other workers' snapshots and the drift gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from finmaas.background import cancel, every
from finmaas.monitoring.counts import SCORE
from finmaas.monitoring.loaded import Served
from finmaas.monitoring.metrics import Gauges, ServiceMetrics, SharedSnapshots, families, merge
from finmaas.monitoring.report import drift_report
from finmaas.monitoring.store import DriftStore
from finmaas.registry import MonitoringPolicy

log = logging.getLogger("finmaas.monitoring")

PUBLISH_INTERVAL = 1.0
"""Seconds between a worker's snapshots when several workers serve."""
DRIFT_WINDOW_DAYS = 7
DRIFT_TTL = 60.0
"""Drift gauges are recomputed from the stored counts at most once a minute."""

Keep = Callable[[str], bool]


class Exporter:
    def __init__(
        self,
        metrics: ServiceMetrics,
        loaded: Callable[[], Iterable[Served]],
        drift: DriftStore,
        *,
        policy: Callable[[str], MonitoringPolicy],
        drift_min_rows: int,
        shared: SharedSnapshots | None = None,
        backlogs: dict[str, Callable[[], int]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.loaded = loaded
        self.drift = drift
        self.policy = policy
        self.drift_min_rows = drift_min_rows
        """Below this many rows in the window a version has no PSI or CSI series."""
        self.shared = shared
        self.backlogs = backlogs or {}
        self._task: asyncio.Task[None] | None = None
        self._drift: list[Metric] = []
        self._drift_at = -math.inf
        self._drift_lock = asyncio.Lock()

    async def start(self) -> None:
        if self.shared is not None:
            self._task = every(
                PUBLISH_INTERVAL,
                self._publish,
                name="finmaas-metrics",
                log=log,
                failed="could not publish this worker's metrics",
            )

    async def close(self) -> None:
        await cancel(self._task)
        if self.shared is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.shared.publish, self.metrics.snapshot({}))

    def gauges(self) -> Gauges:
        queue: list[list[object]] = []
        loaded: list[list[object]] = []
        size: list[list[object]] = []
        for model in self.loaded():
            version = str(model.number)
            queue.append([model.name, version, "predict", model.batcher.stats.queued_rows])
            if model.explain_batcher is not None:
                queued = model.explain_batcher.stats.queued_rows
                queue.append([model.name, version, "explain", queued])
            loaded.append([model.name, version, 1])
            size.append([model.name, version, model.memory])
        gauges: Gauges = {
            "finmaas_queue_rows": queue,
            "finmaas_loaded_versions": loaded,
            "finmaas_model_artifact_bytes": size,
        }
        for name, backlog in self.backlogs.items():
            gauges[name] = [[backlog()]]
        return gauges

    async def render(self, keep: Keep | None = None) -> bytes:
        """The Prometheus text format; ``keep(model)``: which models' rows to show."""
        own = self.metrics.snapshot(self.gauges())
        others = await asyncio.to_thread(self.shared.others) if self.shared is not None else []
        merged = merge([(own, True), *others])
        drift = await self._drift_families()
        collected = [*families(merged, keep), *_filtered(drift, keep)]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Fixed(collected))
        return generate_latest(registry)

    async def _drift_families(self) -> list[Metric]:
        async with self._drift_lock:
            if time.monotonic() - self._drift_at >= DRIFT_TTL:
                try:
                    self._drift = await asyncio.to_thread(self._compute_drift)
                except Exception:
                    log.exception("drift gauges failed; serving the previous values")
                self._drift_at = time.monotonic()
            return self._drift

    def _compute_drift(self) -> list[Metric]:
        window = f"over the last {DRIFT_WINDOW_DAYS} days of served rows (UTC days)"
        score = GaugeMetricFamily(
            "finmaas_score_psi", f"PSI of the score {window}.", labels=("model", "version")
        )
        feature = GaugeMetricFamily(
            "finmaas_feature_csi",
            f"CSI of each input {window}.",
            labels=("model", "version", "feature"),
        )
        rows = GaugeMetricFamily(
            "finmaas_drift_rows", f"Rows in the drift window {window}.", labels=("model", "version")
        )
        bands = GaugeMetricFamily(
            "finmaas_drift_threshold",
            "The model's drift bands: an index at or over 'watch' or 'alert' is in that band.",
            labels=("model", "band"),
        )
        until = datetime.now(UTC).date() + timedelta(days=1)
        since = until - timedelta(days=DRIFT_WINDOW_DAYS)
        seen: set[str] = set()
        for model in self.loaded():
            version = model.version
            if not model.live.binnings:
                continue
            stored = self.drift.window(model.name, model.number, since, until)
            report = drift_report(
                version, stored, since=since, until=until, min_rows=self.drift_min_rows
            )
            labels = [model.name, str(model.number)]
            rows.add_metric(labels, report["rows"])
            if report["score"] is not None and report["score"]["index"] is not None:
                score.add_metric(labels, report["score"]["index"])
            for entry in report["features"]:
                if entry["index"] is not None and entry["name"] != SCORE:
                    feature.add_metric([*labels, entry["name"]], entry["index"])
            if model.name not in seen:
                seen.add(model.name)
                policy = self.policy(model.name)
                bands.add_metric([model.name, "watch"], policy.drift_watch)
                bands.add_metric([model.name, "alert"], policy.drift_alert)
        return [score, feature, rows, bands]

    async def _publish(self) -> None:
        assert self.shared is not None
        snapshot = self.metrics.snapshot(self.gauges())
        await asyncio.to_thread(self.shared.publish, snapshot)


class _Fixed:
    """A collector that yields families collected already."""

    def __init__(self, collected: list[Metric]) -> None:
        self.collected = collected

    def collect(self) -> Iterator[Metric]:
        return iter(self.collected)


def _filtered(collected: list[Metric], keep: Keep | None) -> Iterator[Metric]:
    for metric in collected:
        if keep is None:
            yield metric
            continue
        copy = GaugeMetricFamily(metric.name, metric.documentation, labels=())
        copy.samples = [s for s in metric.samples if keep(s.labels["model"])]
        yield copy
