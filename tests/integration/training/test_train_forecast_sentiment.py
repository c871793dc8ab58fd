"""``finmaas train forecast`` on GOOG and ``finmaas train sentiment`` on generated
headlines: registered versions with their evaluation, lineage and card, served
scores equal to the models', and the bad inputs the issue names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finmaas.actor import Actor
from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.datasets.goog import load_goog
from finmaas.datasets.headlines import generated_headlines
from finmaas.errors import Invalid, NotFound
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.schema import RecordEncoder
from finmaas.training.forecast_runs import ForecastRun, train_forecast
from finmaas.training.sentiment_runs import SentimentRun, train_sentiment

ACTOR = Actor("local:trainer", role="developer")
LIMIT = 64 * 1024 * 1024


def _open(tmp_path: Path) -> tuple[Registry, LocalArtifactStore]:
    settings = Settings(home=tmp_path / "home")
    return Registry.open(settings), LocalArtifactStore(settings.resolved_artifacts_dir)


def test_goog_direction_is_registered_with_its_baselines_and_not_staged(tmp_path: Path) -> None:
    path = tmp_path / "GOOG.csv"
    load_goog().to_csv(path, index=False)
    registry, store = _open(tmp_path)
    try:
        result = train_forecast(
            ForecastRun(data=path, name="goog"), registry, store, actor=ACTOR, max_bytes=LIMIT
        )
        version = result.version
        assert (version.signature.task, version.signature.classes) == ("binary", ("down", "up"))
        assert [f.name for f in version.signature.inputs][:2] == ["return_0", "return_1"]
        metrics = version.metrics
        assert metrics["directional_accuracy"] == pytest.approx(0.516, abs=0.002)
        assert metrics["baseline_majority_directional_accuracy"] == pytest.approx(0.512, abs=0.002)
        assert metrics["edge_z_majority"] < 2  # 0.516 against 0.512 is noise
        assert not result.staged
        with pytest.raises(NotFound):
            registry.get_version("goog", "staging")
        assert version.lineage["data_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert version.lineage["template"] == "forecast/direction"
        assert "was not staged" in version.model_card
        assert "No proven skill" in version.model_card
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("duplicate", "dates must be unique, 2004-09-01 appears more than once"),
        (
            "unsorted",
            "dates must be in increasing order, 2004-08-01 comes after 2004-09-01 (row 11)",
        ),
    ],
)
def test_a_series_with_duplicate_or_unsorted_dates_is_refused(
    tmp_path: Path, change: str, message: str
) -> None:
    frame = load_goog().head(700)
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    frame.loc[10, "Date"] = frame.loc[9, "Date"] if change == "duplicate" else "2004-08-01"
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    registry, store = _open(tmp_path)
    try:
        with pytest.raises(Invalid) as caught:
            train_forecast(
                ForecastRun(data=path, name="bad"), registry, store, actor=ACTOR, max_bytes=LIMIT
            )
        with pytest.raises(NotFound):
            registry.get_model("bad")
    finally:
        registry.close()
    assert str(caught.value) == message


def test_headlines_are_registered_as_a_served_text_classifier(tmp_path: Path) -> None:
    frame = generated_headlines(400, seed=1)
    path = tmp_path / "headlines.parquet"
    frame.to_parquet(path)
    registry, store = _open(tmp_path)
    try:
        result = train_sentiment(
            SentimentRun(data=path, name="news"), registry, store, actor=ACTOR, max_bytes=LIMIT
        )
        version = result.version
        assert result.staged
        assert registry.get_version("news", "staging").version == version.version
        assert version.signature.task == "multiclass"
        assert [(f.name, f.dtype) for f in version.signature.inputs] == [("text", "string")]
        assert version.metrics["macro_f1"] > 0.85 > version.metrics["majority_macro_f1"]
        assert version.lineage["data_format"] == "parquet"
        # Served as any version: the stored artifact scores records by their text.
        data = store.read(version.artifact_digest)
        predictor = load_predictor(data, ModelFormat(version.artifact_format), version.signature)
        texts = frame["text"].head(20).tolist()
        scores = predictor.predict(
            RecordEncoder(version.signature).encode([{"text": t} for t in texts])
        )
        labels = np.asarray(version.signature.classes)[np.argmax(scores, axis=1)]
        assert (labels == frame["label"].head(20).to_numpy()).mean() > 0.8
        assert "## Fairness" in version.model_card
    finally:
        registry.close()


def test_the_cli_trains_forecast_and_sentiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "GOOG.csv"
    load_goog().to_csv(prices, index=False)
    texts = tmp_path / "news.csv"
    generated_headlines(300).to_csv(texts, index=False)
    base = ["--home", str(tmp_path / "home"), "train"]
    assert main([*base, "forecast", "--data", str(prices), "--target", "return"]) == 0
    out = capsys.readouterr().out
    assert "forecast version 1: baseline_last_value_directional_accuracy 0." in out
    assert "nothing staged: see the model card for why" in out
    assert main([*base, "sentiment", "--data", str(texts), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "sentiment version 1: f1_negative 0." in out
    assert "staging → sentiment version 1" in out
    assert main([*base, "forecast", "--data", str(prices), "--target", "price"]) == 1
    assert capsys.readouterr().err == "error: --target must be direction or return, got 'price'\n"
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(empty, index=False)
    assert main([*base, "sentiment", "--data", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: job ")
    assert err.endswith(" failed: column 'label' must hold two classes or more, got only 'x'\n")
