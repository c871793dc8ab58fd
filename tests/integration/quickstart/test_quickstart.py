"""The quickstart trains, registers and promotes; a second run reuses its versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finmaas.actor import Actor
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.loading import load_version
from finmaas.quickstart import MODEL_NAME, run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import RecordEncoder

ACTOR = Actor("tester")


def test_quickstart_registers_two_candidates_and_promotes_the_best(
    registry: Registry, store: LocalArtifactStore
) -> None:
    result = run_quickstart(registry, store, actor=ACTOR)

    assert not result.reused
    assert [v.version for v in result.versions] == [1, 2]
    assert {v.tags["candidate"] for v in result.versions} == {"lightgbm", "scorecard"}
    assert {v.artifact_format for v in result.versions} == {"lightgbm", "skops"}
    for version in result.versions:
        assert 0.76 <= version.metrics["auc"] <= 0.81, version.metrics
        assert version.metrics["gini"] == pytest.approx(2 * version.metrics["auc"] - 1)
        assert version.metrics["expected_cost"] < version.metrics["reject_all_cost"] == 0.7
        assert version.lineage["data_sha256"]
        assert version.reference_profile is not None
        assert version.reference_profile["rows"] == 1000
    best = max(result.versions, key=lambda v: v.metrics["auc"])
    assert result.production.version == best.version
    assert registry.get_version(MODEL_NAME, "production").version == best.version

    again = run_quickstart(registry, store, actor=ACTOR)
    assert again.reused
    assert [v.version for v in again.versions] == [1, 2]
    assert registry.get_model(MODEL_NAME).latest_version == 2


def test_production_version_scores_a_raw_applicant(
    registry: Registry, store: LocalArtifactStore
) -> None:
    run_quickstart(registry, store, actor=ACTOR)
    version, predictor = load_version(registry, store, MODEL_NAME, "production")
    applicants = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).head(5)
    records = applicants.to_dict(orient="records")
    scores = predictor.predict(RecordEncoder(version.signature).encode(records))
    assert scores.shape == (5,)
    assert ((scores > 0) & (scores < 1)).all()


def test_quickstart_command(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("finmaas")
    result = subprocess.run(
        [str(script), "--home", str(tmp_path / "home"), "quickstart", "--no-serve"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "credit-risk: 5-fold CV (mean)" in result.stdout
    assert "production → credit-risk version " in result.stdout
    assert "curl -s http://127.0.0.1:8080/v1/models/credit-risk:predict" in result.stdout
    assert "predict('credit-risk', [applicant]).predictions" in result.stdout
    assert (tmp_path / "home" / "registry.db").exists()
