"""``finmaas decisions show``: a record's number is its probability, never "score"
(V1's scorecard points)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from finmaas.config import Settings
from finmaas.monitoring.decision_records import Decision, DecisionStore
from finmaas.registry import Registry
from tests.integration.cli.conftest import Cli, as_json


def test_show_names_the_probability(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    pushed = cli(
        "models",
        "push",
        "credit",
        str(model_files["v1"]),
        "--signature",
        str(model_files["signature"]),
    )
    assert pushed.code == 0, pushed.err
    registry = Registry.open(settings)
    try:
        at = datetime(2026, 5, 1, 12, tzinfo=UTC)
        record = Decision(at, "r1", 0, None, "default", "credit", 1, None, 0.31, "good", None, None)
        DecisionStore(registry).add([record])
    finally:
        registry.close()

    shown = cli("decisions", "show", "r1")
    assert shown.code == 0, shown.err
    assert "credit@1 row 0 at 2026-05-01T12:00:00Z: good, probability 0.3100" in shown.out
    assert "score" not in shown.out
    [decision] = as_json(cli("decisions", "show", "r1", "--json").out)["decisions"]  # type: ignore[index]
    assert (decision["probability"], "score" in decision) == (0.31, False)
