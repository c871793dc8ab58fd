"""The quickstart trains, registers and promotes; a second run reuses its versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finmaas.actor import Actor
from finmaas.cli.main import main
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.publish.loading import load_version
from finmaas.quickstart import MODEL_NAME, quickstart_keys, run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.schema import RecordEncoder
from finmaas.security.policy import allowed_verbs

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
        assert version.explanation is not None
        assert version.explanation["reference"] == "sample"
        assert version.explanation["reference_rows"] == 1000
    methods = {v.tags["candidate"]: v.explanation["method"] for v in result.versions}  # type: ignore[index]
    assert methods == {"lightgbm": "tree_shap", "scorecard": "additive"}
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
    run_quickstart(registry, store, actor=ACTOR, folds=2)  # the folds do not change serving
    version, predictor = load_version(registry, store, MODEL_NAME, "production")
    applicants = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).head(5)
    records = applicants.to_dict(orient="records")
    scores = predictor.predict(RecordEncoder(version.signature).encode(records))
    assert scores.shape == (5,)
    assert ((scores > 0) & (scores < 1)).all()


def test_quickstart_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path / "home"), "quickstart", "--no-serve"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "credit-risk: 5-fold CV (mean)" in stdout
    assert "the server below" not in stdout  # --no-serve: no server follows
    assert "Get a prediction (once a server is up: finmaas serve):\n" in stdout
    assert "production → credit-risk version " in stdout
    assert "curl -s http://127.0.0.1:8080/v1/models/credit-risk:predict" in stdout
    assert "predict('credit-risk', [applicant]).predictions" in stdout
    consumer = re.search(r"quickstart-consumer \(role consumer.*: (fmk_\S+)", stdout)
    assert consumer is not None
    assert re.search(r"quickstart-admin \(role admin\): fmk_", stdout)
    assert f"-H 'authorization: Bearer {consumer.group(1)}'" in stdout
    assert f"api_key='{consumer.group(1)}'" in stdout
    assert (tmp_path / "home" / "registry.db").exists()


def test_quickstart_keys_are_rotated_on_each_run(registry: Registry) -> None:
    first = quickstart_keys(registry, actor=ACTOR)
    policy = KeyStore(registry).snapshot().models.get(MODEL_NAME)
    consumer = first.consumer.record
    assert (first.admin.record.role, consumer.role) == ("admin", "consumer")
    assert allowed_verbs(consumer, MODEL_NAME, policy) == {"predict", "explain", "metadata"}
    assert allowed_verbs(consumer, "fraud", policy) == frozenset()

    second = quickstart_keys(registry, actor=ACTOR)
    store = KeyStore(registry)
    assert {k.name for k in store.list()} == {"quickstart-admin", "quickstart-consumer"}
    for old, new in ((first.admin, second.admin), (first.consumer, second.consumer)):
        assert new.token != old.token
        replaced = store.get(old.record.id)
        assert replaced.revoked_at is not None
        assert replaced.replaced_by == new.record.id
