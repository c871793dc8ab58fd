"""The quickstart: German Credit → two registered versions of ``credit-risk``.

Trains a LightGBM model and a logistic-regression scorecard with stratified
k-fold CV, registers both with their CV metrics, reference profile and lineage,
and points ``production`` at the one with the better CV AUC. Running it again
with the same data and seed reuses the versions it registered before.

Four-eyes holds here too: the versions are authored by the quickstart job
(``job:quickstart``), and the operator who ran it records the approval that
``production`` needs, with a note saying it was a demo, before promoting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from finmaas.actor import DEFAULT_TENANT, Actor
from finmaas.datasets import (
    GERMAN_CREDIT_TARGET,
    german_credit_data_sha256,
    german_credit_signature,
    load_german_credit,
)
from finmaas.errors import NotFound
from finmaas.publish.model_cards import CardContext, DataFacts
from finmaas.publish.registration import register
from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.registry.key_store import Grant, KeyStore
from finmaas.security.key_secrets import IssuedKey, issue_key, rotate_key
from finmaas.training.credit import CandidateKind, train_credit_candidates

MODEL_NAME = "credit-risk"
PRODUCTION = "production"
AUTHOR = "job:quickstart"
QUICKSTART_CANDIDATES: tuple[CandidateKind, ...] = ("lightgbm", "scorecard")
"""The quick ones; ``finmaas train credit`` adds the network and repeats the folds."""
QUICKSTART_USE = (
    "A demonstration of finmaas on the public German Credit data (1994): scores "
    "P(bad) for a loan applicant. Not for decisions on real applicants."
)
APPROVAL_NOTE = (
    "quickstart demo: approved by the operator who ran `finmaas quickstart` "
    "on its cross-validation metrics; not a model validation"
)


@dataclass(frozen=True)
class QuickstartResult:
    versions: tuple[ModelVersion, ...]
    production: ModelVersion
    reused: bool


def run_quickstart(
    registry: Registry,
    store: ArtifactStore,
    *,
    actor: Actor,
    folds: int = 5,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
) -> QuickstartResult:
    data_sha256 = german_credit_data_sha256()
    run_key = f"german-credit:{data_sha256[:16]}:folds={folds}:seed={seed}"
    versions = _registered_before(registry, run_key)
    reused = bool(versions)
    if not versions:
        frame = load_german_credit()
        signature = german_credit_signature()
        features = frame.drop(columns=[GERMAN_CREDIT_TARGET])
        candidates = train_credit_candidates(
            frame,
            signature,
            GERMAN_CREDIT_TARGET,
            folds=folds,
            repeats=1,
            seed=seed,
            candidates=QUICKSTART_CANDIDATES,
            progress=progress,
        )
        facts = DataFacts(
            name="germancredit.csv",
            sha256=data_sha256,
            rows=len(frame),
            target=GERMAN_CREDIT_TARGET,
            positive="bad",
            positive_rate=float((frame[GERMAN_CREDIT_TARGET] == "bad").mean()),
        )
        for candidate in candidates:
            if progress:
                progress(f"registering {candidate.name}")
            versions.append(
                register(
                    MODEL_NAME,
                    candidate.model,
                    features,
                    signature=signature,
                    metrics=candidate.cv_metrics,
                    params=candidate.params,
                    tags={"quickstart": run_key, "candidate": candidate.name},
                    lineage={
                        "produced_by": "finmaas quickstart",
                        "template": f"credit/{candidate.kind}",
                        "data": "germancredit.csv",
                        "data_sha256": data_sha256,
                        "cv": f"stratified {folds}-fold",
                        "seed": seed,
                    },
                    trained_on_encoded=True,
                    card_context=CardContext(
                        intended_use=QUICKSTART_USE,
                        data=facts,
                        produced_by=(
                            f"`finmaas quickstart`, template `credit/{candidate.kind}`",
                            f"stratified {folds}-fold cross-validation, seed {seed}",
                        ),
                    ),
                    description="Probability that a German Credit applicant is a bad risk.",
                    owner="quickstart",
                    registry=registry,
                    store=store,
                    actor=Actor(AUTHOR, role="developer", tenant=actor.tenant, origin=actor.origin),
                )
            )
    best = max(versions, key=lambda v: v.metrics.get("auc", float("-inf")))
    if PRODUCTION not in best.aliases:
        if not any(
            a.decision == "approved" for a in registry.list_approvals(MODEL_NAME, best.version)
        ):
            registry.decide(MODEL_NAME, best.version, "approved", note=APPROVAL_NOTE, actor=actor)
        registry.set_alias(MODEL_NAME, PRODUCTION, best.version, actor=actor)
    production = registry.get_version(MODEL_NAME, PRODUCTION)
    return QuickstartResult(tuple(versions), production, reused)


def _registered_before(registry: Registry, run_key: str) -> list[ModelVersion]:
    try:
        versions = registry.list_versions(MODEL_NAME, include_archived=False)
    except NotFound:
        return []
    return [v for v in versions if v.tags.get("quickstart") == run_key]


@dataclass(frozen=True)
class QuickstartKeys:
    """The quickstart's two keys; each run makes new secrets and revokes the old ones."""

    admin: IssuedKey
    consumer: IssuedKey


ADMIN_KEY = "quickstart-admin"
CONSUMER_KEY = "quickstart-consumer"
CONSUMER_GRANT = Grant(MODEL_NAME, ("explain", "metadata", "predict"))


def quickstart_keys(registry: Registry, *, actor: Actor) -> QuickstartKeys:
    """Create the admin and consumer keys, or rotate them when an earlier run made them.

    Secrets are stored only as hashes, so a second run cannot show the first
    run's secrets again: it rotates the keys and prints the new ones.
    """
    store = KeyStore(registry)
    active = {key.name: key for key in store.list(tenant=DEFAULT_TENANT)}

    def issue(name: str, role: str, grants: tuple[Grant, ...]) -> IssuedKey:
        if name in active:
            return rotate_key(store, active[name].id, actor=actor)
        return issue_key(
            store, name=name, role=role, actor=actor, owner="quickstart", grants=grants
        )

    return QuickstartKeys(
        admin=issue(ADMIN_KEY, "admin", ()),
        consumer=issue(CONSUMER_KEY, "consumer", (CONSUMER_GRANT,)),
    )
