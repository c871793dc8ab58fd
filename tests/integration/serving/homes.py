"""The homes the serving tests serve: the quickstart's (built once a session) and
private copies of it, plus the applicants and V2 tensors the tests send."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.quickstart import run_quickstart
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.records import ModelUpdate
from finmaas.registry.tables import drift_counts

APPLICANT = (
    load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).head(8).to_dict(orient="records")
)
CATEGORY_FEATURES = {k for k, v in APPLICANT[0].items() if isinstance(v, str)}


def build_quickstart_home(home: Path) -> Settings:
    """The quickstart's two credit-risk versions (2 folds), production on the better."""
    settings = Settings(home=home)
    registry = Registry.open(settings)
    try:
        run_quickstart(
            registry,
            LocalArtifactStore(settings.resolved_artifacts_dir),
            actor=Actor("t"),
            folds=2,
        )
    finally:
        registry.close()
    return settings


def copy_home(
    served: Settings,
    folder: Path,
    update: ModelUpdate | None = None,
    *,
    keep_drift_counts: bool = True,
) -> Settings:
    """A private copy of the served home in ``folder``, for a test that changes
    credit-risk's policy (``update``) or counts drift from zero."""
    shutil.copytree(served.home, folder / "home")
    settings = Settings(home=folder / "home")
    registry = Registry.open(settings)
    try:
        if update is not None:
            registry.update_model("credit-risk", update, actor="local:setup")
        if not keep_drift_counts:  # other tests' traffic is stored in the shared home
            with registry.write() as conn:
                conn.execute(sa.delete(drift_counts))
    finally:
        registry.close()
    return settings


def feature_tensors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One V2 input tensor per feature: BYTES for categories, INT64 for numbers."""
    tensors = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        datatype = "BYTES" if name in CATEGORY_FEATURES else "INT64"
        tensors.append({"name": name, "datatype": datatype, "shape": [len(rows)], "data": values})
    return tensors
