"""``finmaas models update`` monitoring fields: per-model drift bands, log sampling, decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from finmaas.registry import MonitoringPolicy, Registry
from tests.integration.cli.conftest import Cli, as_json


def _push(cli: Cli, files: dict[str, Path]) -> None:
    pushed = cli(
        "models",
        "push",
        "credit",
        str(files["v1"]),
        "--signature",
        str(files["signature"]),
        "--reference",
        str(files["reference"]),
    )
    assert pushed.code == 0, pushed.err


def test_defaults_then_the_models_own_bands_reach_the_drift_report(
    cli: Cli, model_files: dict[str, Path], registry: Registry
) -> None:
    _push(cli, model_files)
    assert registry.get_model("credit").monitoring == MonitoringPolicy()
    updated = cli(
        "models",
        "update",
        "credit",
        "--drift-watch",
        "0.05",
        "--drift-alert",
        "0.2",
        "--log-sample-rate",
        "0.1",
        "--decisions",
    )
    assert updated.code == 0, updated.err
    assert (
        "monitoring: drift bands 0.05/0.2, prediction log 10%, decision records on\n" in updated.out
    )
    shown = as_json(cli("models", "show", "credit", "--json").out)
    assert isinstance(shown, dict)
    assert shown["monitoring"] == {
        "drift_watch": 0.05,
        "drift_alert": 0.2,
        "log_sample_rate": 0.1,
        "decisions": True,
    }
    report = as_json(cli("drift", "credit", "--version", "1", "--json").out)
    assert isinstance(report, dict)
    assert report["thresholds"] == {"watch": 0.05, "alert": 0.2}
    # One field at a time leaves the others as they were.
    assert cli("models", "update", "credit", "--no-decisions").code == 0
    assert registry.get_model("credit").monitoring == MonitoringPolicy(0.05, 0.2, 0.1, False)
    audit = as_json(cli("audit", "list", "--json").out)
    assert isinstance(audit, list)
    assert [e["action"] for e in audit].count("model.update") == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--drift-watch", "0.3"],
            "drift bands need 0 < watch < alert ≤ 10, got watch 0.3 and alert 0.25",
        ),
        (
            ["--drift-watch", "0"],
            "drift bands need 0 < watch < alert ≤ 10, got watch 0.0 and alert 0.25",
        ),
        (["--log-sample-rate", "1.5"], "log sample rate must be between 0 and 1, got 1.5"),
        (["--log-sample-rate", "-0.1"], "log sample rate must be between 0 and 1, got -0.1"),
    ],
)
def test_bad_monitoring_values_are_refused_and_nothing_changes(
    cli: Cli, model_files: dict[str, Path], registry: Registry, flags: list[str], message: str
) -> None:
    _push(cli, model_files)
    refused = cli("models", "update", "credit", *flags)
    assert refused.code == 1
    assert message in refused.err
    assert registry.get_model("credit").monitoring == MonitoringPolicy()
