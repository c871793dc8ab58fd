"""Shutdown: every part of the app is closed even when one of them fails, so a broken
sink cannot cost the usage counts written after it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from finmaas.config import Settings
from finmaas.monitoring.exporter import Exporter
from finmaas.registry import Registry
from finmaas.registry.usage import UsageStore
from finmaas.security.guard import Guard
from tests.integration.serving.homes import APPLICANT
from tests.integration.serving.in_process import start_in_process


def test_a_failing_part_does_not_stop_the_rest_of_the_shutdown(
    served_home: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = start_in_process(served_home, tmp_path, usage_flush_interval=5)
    key_id = served.consumer[4:20]
    for _ in range(3):
        answer = served.request(
            "POST",
            "/v1/models/credit-risk:predict",
            key=served.consumer,
            json={"instances": APPLICANT[:2]},
        )
        assert answer.status_code == 200, answer.text

    async def broken_close(self: Exporter) -> None:
        raise OSError("metrics folder is gone")

    closed: list[str] = []
    close_guard = Guard.close

    async def watched_close(self: Guard) -> None:
        closed.append("guard")
        await close_guard(self)

    monkeypatch.setattr(Exporter, "close", broken_close)  # closed before the usage meter
    monkeypatch.setattr(Guard, "close", watched_close)
    with caplog.at_level(logging.ERROR, logger="finmaas.serving"):
        served.close()
    [failure] = [r for r in caplog.records if r.name == "finmaas.serving"]
    assert failure.getMessage() == "shutdown: closing the metrics failed"
    assert str(failure.exc_info and failure.exc_info[1]) == "metrics folder is gone"
    assert closed == ["guard"]
    registry = Registry.open(served.server.settings)
    try:
        rows = UsageStore(registry).query(key_id=key_id)
    finally:
        registry.close()
    assert (sum(row.requests for row in rows), sum(row.rows for row in rows)) == (3, 6)
