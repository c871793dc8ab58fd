"""Service metrics: histogram buckets, merging workers' snapshots, the text format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from finmaas.monitoring.metrics import (
    LATENCY_BUCKETS,
    Histogram,
    ServiceMetrics,
    SharedSnapshots,
    families,
    merge,
)
from finmaas.serving.router import protocol_of


def _text(metrics_families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    class Fixed:
        def collect(self) -> object:
            return metrics_families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_value_on_a_bound_falls_in_that_bucket_and_buckets_are_cumulative() -> None:
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 2.0, 3.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]
    assert histogram.buckets() == [("1.0", 2), ("2.0", 4), ("+Inf", 5)]
    assert histogram.total == 8.0


@pytest.mark.parametrize(
    ("path", "protocol"),
    [
        ("/v1/models/x:predict", "v1"),
        ("/v2/models/x/infer", "v2"),
        ("/api/models", "api"),
        ("/invocations", "mlflow"),
        ("/metrics", "other"),
        ("/v1", "other"),
    ],
)
def test_protocol_labels_come_from_a_fixed_set(path: str, protocol: str) -> None:
    assert protocol_of(path) == protocol


def _worker(requests: int, queued: int) -> dict[str, object]:
    metrics = ServiceMetrics()
    for _ in range(requests):
        metrics.observe_request("v1", 200, "credit-risk", 3, 0.002)
    metrics.reject("credit-risk", "quota")
    metrics.batch_timings("credit-risk", 3, "predict").observe(8, 0.001)
    return metrics.snapshot({"finmaas_queue_rows": [["credit-risk", "3", "predict", queued]]})


def test_counters_add_up_across_workers_and_a_dead_workers_gauges_are_dropped() -> None:
    merged = merge([(_worker(5, 2), True), (_worker(3, 7), True), (_worker(4, 100), False)])
    samples = _text(families(merged))
    labels = (("model", "credit-risk"), ("protocol", "v1"), ("status", "200"), ("version", "3"))
    assert samples[("finmaas_requests_total", labels)] == 12
    latency = (("model", "credit-risk"), ("protocol", "v1"), ("version", "3"))
    assert samples[("finmaas_request_duration_seconds_count", latency)] == 12
    assert samples[("finmaas_request_duration_seconds_bucket", (("le", "0.001"), *latency))] == 0
    assert samples[("finmaas_request_duration_seconds_bucket", (("le", "0.0025"), *latency))] == 12
    assert (
        samples[("finmaas_rejections_total", (("model", "credit-risk"), ("reason", "quota")))] == 3
    )
    batch = (("kind", "predict"), ("model", "credit-risk"), ("version", "3"))
    assert samples[("finmaas_batch_rows_sum", batch)] == 24
    queue = (("kind", "predict"), ("model", "credit-risk"), ("version", "3"))
    assert samples[("finmaas_queue_rows", queue)] == 9  # 2 + 7; the dead worker's 100 is gone
    assert samples[("finmaas_workers", ())] == 2


def test_latency_adds_up_the_statuses_of_a_version_and_requests_keep_them_apart() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request("v2", 200, "credit-risk", 3, 0.002)
    metrics.observe_request("v2", 422, "credit-risk", 3, 0.0004)
    metrics.observe_request("v2", 404, None, None, 0.03)
    samples = _text(families(merge([(metrics.snapshot({}), True)])))
    ok = (("model", "credit-risk"), ("protocol", "v2"), ("status", "200"), ("version", "3"))
    bad = (("model", "credit-risk"), ("protocol", "v2"), ("status", "422"), ("version", "3"))
    unknown = (("model", ""), ("protocol", "v2"), ("status", "404"), ("version", ""))
    assert samples[("finmaas_requests_total", ok)] == 1
    assert samples[("finmaas_requests_total", bad)] == 1
    assert samples[("finmaas_requests_total", unknown)] == 1
    latency = (("model", "credit-risk"), ("protocol", "v2"), ("version", "3"))
    assert samples[("finmaas_request_duration_seconds_count", latency)] == 2
    assert samples[("finmaas_request_duration_seconds_sum", latency)] == pytest.approx(0.0024)
    assert samples[("finmaas_request_duration_seconds_bucket", (("le", "0.0005"), *latency))] == 1
    assert samples[("finmaas_request_duration_seconds_bucket", (("le", "0.0025"), *latency))] == 2


def test_keep_leaves_out_other_models_but_keeps_rows_that_name_none() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request("v1", 200, "credit-risk", 1, 0.001)
    metrics.observe_request("v1", 200, "fraud", 1, 0.001)
    metrics.observe_request("v1", 404, None, None, 0.001)
    merged = merge([(metrics.snapshot({}), True)])
    names = {
        dict(labels)["model"]
        for (name, labels) in _text(families(merged, lambda model: model != "fraud"))
        if name == "finmaas_requests_total"
    }
    assert names == {"credit-risk", ""}


def test_workers_read_each_others_snapshots_and_skip_broken_files(tmp_path: Path) -> None:
    mine = SharedSnapshots(tmp_path)
    mine.publish(_worker(1, 0))
    (tmp_path / "12345678.json").write_bytes(b"{not json")
    (tmp_path / "notes.json").write_bytes(b"{}")
    other = SharedSnapshots(tmp_path)
    other.pid = os.getpid() + 1  # as another worker sees the folder
    found = other.others()
    assert len(found) == 1
    snapshot, alive = found[0]
    assert snapshot["pid"] == os.getpid()
    assert alive
    assert mine.others() == []  # a worker never counts its own file twice


def test_latency_buckets_start_below_a_millisecond() -> None:
    assert LATENCY_BUCKETS[0] == 0.0005
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
