"""``finmaas train sentiment``: labelled texts to a registered text classifier.

The texts and labels are checked
(:func:`~finmaas.training.sentiment.check_labelled_texts`), the TF-IDF baseline
is cross-validated (macro-F1 mean and sd, per-class precision, recall and F1,
and the majority-class floor beside them), refit on every row and registered
with one ``string`` input, the text, so it is served like any other version:
``{"instances": [{"text": "…"}]}``. It gets the ``staging`` alias when its
macro-F1 is above the majority floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from finmaas.actor import Actor
from finmaas.publish.model_cards import CardContext, DataFacts
from finmaas.publish.registration import register
from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.registry.names import check_model_name
from finmaas.schema import Feature, ModelSignature
from finmaas.training.data import read_table
from finmaas.training.metrics import check_int
from finmaas.training.runs import new_run_id, run_lineage, stage
from finmaas.training.sentiment import (
    MAX_TEXT_CHARS,
    SentimentReport,
    check_labelled_texts,
    evaluate_sentiment,
    sentiment_pipeline,
)


@dataclass(frozen=True)
class SentimentRun:
    data: Path
    name: str
    text: str = "text"
    label: str = "label"
    folds: int = 5
    seed: int = 0
    description: str = ""

    def settings(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "folds": self.folds, "seed": self.seed}


@dataclass(frozen=True)
class SentimentResult:
    version: ModelVersion
    report: SentimentReport
    staged: bool


def train_sentiment(
    run: SentimentRun,
    registry: Registry,
    store: ArtifactStore,
    *,
    actor: Actor,
    max_bytes: int,
    progress: Callable[[str], None] | None = None,
) -> SentimentResult:
    """Check, cross-validate, refit, register; see the module."""
    say = progress or (lambda _: None)
    check_model_name(run.name)
    check_int("folds", run.folds, 2, 20)
    say(f"reading {run.data.name}")
    table = read_table(run.data, max_bytes=max_bytes)
    texts, labels = check_labelled_texts(table.frame, run.text, run.label, run.folds)
    say(f"{len(texts):,} texts; {run.folds}-fold cross-validation")
    report = evaluate_sentiment(texts, labels, folds=run.folds, seed=run.seed)
    say("refit on every text")
    model = served_pipeline(run.seed).fit(
        np.asarray(texts, dtype=object).reshape(-1, 1), np.asarray(labels, dtype=object)
    )
    binary = len(report.classes) == 2
    signature = ModelSignature(
        task="binary" if binary else "multiclass",
        classes=report.classes,
        positive_class=report.classes[1] if binary else None,  # the pipeline's order
        inputs=(Feature(name=run.text, dtype="string", max_length=MAX_TEXT_CHARS),),
    )
    metrics = {
        "macro_f1": report.macro_f1,
        "macro_f1_sd": report.macro_f1_sd,
        "majority_macro_f1": report.majority_macro_f1,
    }
    for label, values in report.per_class.items():
        metrics |= {f"{key}_{label}": float(values[key]) for key in ("precision", "recall")}
        metrics[f"f1_{label}"] = float(values["f1-score"])
    staged = report.macro_f1 > report.majority_macro_f1
    run_id = new_run_id()
    version = register(
        run.name,
        model,
        table.frame[[run.text]].astype(str),
        signature=signature,
        metrics=metrics,
        params={
            "model": "word and word-pair TF-IDF (sublinear) into class-balanced "
            "logistic regression",
            "cv": f"stratified {run.folds}-fold",
        },
        tags={"training_run": run_id},
        lineage={
            **run_lineage(
                "finmaas train sentiment",
                run_id,
                table,
                run.seed,
                run.settings(),
                cv=f"stratified {run.folds}-fold",
            ),
            "template": "sentiment/tfidf-logistic",
        },
        trained_on_encoded=True,
        description=run.description or f"Class of a text among {', '.join(report.classes)}.",
        card_context=CardContext(
            intended_use=(
                "Tags financial texts (headlines, notes) with a class for triage and "
                "monitoring; a baseline to beat, not a reader of meaning."
            ),
            data=DataFacts(name=table.name, sha256=table.sha256, rows=len(texts), target=run.label),
            selection=(
                f"Macro-F1 {report.macro_f1:.3f} ± {report.macro_f1_sd:.3f} against "
                f"{report.majority_macro_f1:.3f} for always answering the most frequent class"
                + (": staged." if staged else ": no better than the floor, not staged.")
            ),
            limitations=[
                "Bag of words and word pairs: negation and context beyond two words are lost.",
                "Its explanations are not available (free-text input).",
            ],
            produced_by=(f"`finmaas train sentiment` run `{run_id}`",),
        ),
        registry=registry,
        store=store,
        actor=actor,
    )
    stage(
        registry, version, staged, actor=actor, say=say, why_not="no better than the majority floor"
    )
    return SentimentResult(version, report, staged)


def served_pipeline(seed: int = 0) -> Pipeline:
    """:func:`sentiment_pipeline` over the served matrix: the text is its one column."""
    vectorizer, classifier = (step for _, step in sentiment_pipeline(seed).steps)
    return Pipeline(
        [("text", ColumnTransformer([("tfidf", vectorizer, 0)])), ("logistic", classifier)]
    )
