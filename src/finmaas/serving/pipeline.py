"""The one inference pipeline every protocol calls, each step written once.

A protocol's handler decodes what its URL and headers say into an
:class:`InferenceCall` and hands it to :meth:`DataPlane.infer`, which runs:

1. **authorise** the key for the model and verb (an invisible model is "not found");
2. **resolve** the name and version or alias to a loaded version in the pool;
3. **explain options**: the call's :class:`Codec` says whether explanations were
   asked (V2 learns it from the body, which it parses only now, after the key was
   found allowed to see the model); explaining needs the ``explain`` verb, a model
   that can be explained, a valid number of reasons, and a binary model for
   counterfactuals;
4. **decode** the rows against the version's signature (the codec again);
5. **admit** them under the key's limits and quota and the model's concurrency cap;
6. **score** them through the version's batcher (and its contribution batcher
   when explaining), side by side with other requests;
7. **meter** usage, sample the prediction log, count explanations;
8. **explain**: reason codes per row, and counterfactuals when asked;
9. **record** a decision model's decisions (pseudonymised subject, probability, reasons);

and returns an :class:`Inference` the protocol encodes. Errors are typed
(:mod:`finmaas.errors`) and turned into responses once per protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from finmaas.errors import FinmaasError, Invalid, NotSupported, QueueFull, RateLimited
from finmaas.monitoring.decision_records import (
    Decision,
    DecisionWriter,
    stored_reasons,
    subject_ids,
)
from finmaas.monitoring.metrics import ServiceMetrics
from finmaas.monitoring.predictions import PredictionLog
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal
from finmaas.serving.pool import LoadedModel, ModelPool
from finmaas.web.access_log import TRACE


@dataclass(frozen=True, slots=True)
class Selector:
    """Which version a request wants: a number, an alias, or ``production``."""

    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, version: str | None, alias: str | None) -> Selector:
        if version is not None and alias is not None:
            raise Invalid("give either 'version' or 'alias', not both")
        if version is not None:
            if (
                not (version.isascii() and version.isdigit() and len(version) <= 10)
                or not 0 < int(version) < 2**31
            ):
                raise Invalid(f"version must be a positive integer, got {version[:40]!r}")
            return cls(version=int(version))
        return cls(alias=alias)

    @property
    def recorded_alias(self) -> str | None:
        """The alias a decision record names: the one asked for, ``production`` when
        neither a version nor an alias was, none for a version by number."""
        return self.alias or ("production" if self.version is None else None)


PRODUCTION = Selector()


@dataclass(frozen=True, slots=True)
class ExplainAsk:
    """Explanations asked for: how many reasons (None: the version's default) and
    whether to search counterfactuals."""

    reasons: int | None = None
    counterfactual: bool = False


class Codec(Protocol):
    """A protocol's side of one call: what the body asks, and its rows."""

    def explain(self) -> ExplainAsk | None:
        """The explanations asked for, or None; called once the model is resolved."""
        ...

    def rows(self, loaded: LoadedModel) -> np.ndarray:
        """The rows encoded against ``loaded``'s signature."""
        ...


@dataclass(slots=True)
class InferenceCall:
    principal: Principal
    name: str
    selector: Selector
    verbs: tuple[str, ...]
    """Verbs the key must hold on the model before it is resolved, checked in order."""
    codec: Codec
    subject: bytes | None = None
    """The ``X-Subject-ID`` header as sent (a decision model's records name it)."""


@dataclass(slots=True)
class Inference:
    """What the pipeline hands back for the protocol to encode (read-only; not frozen,
    which would cost more per request than it protects)."""

    model: LoadedModel
    x: np.ndarray
    scores: np.ndarray
    explanations: list[dict[str, Any]] | None = None
    """One dict per row (reasons, contributions) when explanations were asked."""
    counterfactuals: list[Any] | None = None
    """One counterfactual (or None) per row when asked."""


class DataPlane:
    """The pipeline, over the pool and what meters, logs and records each call."""

    def __init__(
        self,
        pool: ModelPool,
        guard: Guard,
        *,
        metrics: ServiceMetrics,
        decisions: DecisionWriter | None = None,
        predictions: PredictionLog | None = None,
        pseudonym_key: bytes = b"",
    ) -> None:
        self.pool = pool
        self.guard = guard
        self.metrics = metrics
        self.decisions = decisions
        self.predictions = predictions
        self.pseudonym_key = pseudonym_key

    async def model(
        self, principal: Principal, name: str, selector: Selector, verb: str
    ) -> LoadedModel:
        """Authorise ``verb`` on ``name`` and resolve the version (metadata routes)."""
        self.guard.authorize(principal, name, verb)
        return await self._resolve(name, selector)

    async def infer(self, call: InferenceCall) -> Inference:
        principal, name = call.principal, call.name
        authorize = self.guard.authorize
        for verb in call.verbs:
            authorize(principal, name, verb)
        loaded = await self._resolve(name, call.selector)
        ask = call.codec.explain()
        reasons = 0
        if ask is not None:
            if "explain" not in call.verbs:
                authorize(principal, name, "explain")
            explainer = loaded.explainer
            explainer.check()
            reasons = explainer.check_reasons(ask.reasons)
            if ask.counterfactual and explainer.counterfactuals is None:
                raise NotSupported(
                    f"counterfactuals need a binary model; {loaded.name!r} is "
                    f"{loaded.signature.task}"
                )
        x, scores, contributions, subjects = await self._score(call, loaded, ask is not None)
        explanations = counterfactuals = None
        if contributions is not None:
            explanations = loaded.explainer.rows(contributions, x, reasons)
            if ask is not None and ask.counterfactual:
                counterfactuals = await asyncio.to_thread(
                    loaded.explainer.counterfactual, x, scores
                )
        if subjects is not None:  # a decision model's (no coroutine otherwise)
            await self._record_decisions(call, loaded, scores, subjects, explanations)
        return Inference(loaded, x, scores, explanations, counterfactuals)

    async def _resolve(self, name: str, selector: Selector) -> LoadedModel:
        loaded = await self.pool.get(name, version=selector.version, alias=selector.alias)
        trace = TRACE.get()
        if trace is not None:
            trace.model, trace.version = loaded.name, loaded.number
        return loaded

    async def _score(
        self, call: InferenceCall, loaded: LoadedModel, explain: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str | None] | None]:
        """Decode, admit under the key's limits and the model's cap, score, and meter."""
        started = time.perf_counter()
        guard, principal, rows = self.guard, call.principal, 0
        monitoring = guard.monitoring(loaded.name)
        subjects: list[str | None] | None = None
        contributions: np.ndarray | None = None
        try:
            x = call.codec.rows(loaded)
            rows = x.shape[0]
            if self.decisions is not None and monitoring.decisions:
                subjects = subject_ids(call.subject, rows)
            await guard.admit(principal, rows)
            cap = guard.cap(loaded.name)
            if cap is None:
                scores, contributions = await _run(loaded, x, explain)
            else:
                token = await guard.limiter.enter(loaded.name, cap)
                try:
                    scores, contributions = await _run(loaded, x, explain)
                finally:
                    await guard.limiter.leave(loaded.name, token)
        except RateLimited as exc:
            self.metrics.reject(loaded.name, exc.reason)
            raise
        except QueueFull:
            self.metrics.reject(loaded.name, "queue_full")
            guard.record(principal, loaded.name, loaded.number, rows, False, started)
            raise
        except FinmaasError:
            guard.record(principal, loaded.name, loaded.number, rows, False, started)
            raise
        guard.record(principal, loaded.name, loaded.number, rows, True, started)
        if monitoring.log_sample_rate and self.predictions is not None:
            trace = TRACE.get()
            self.predictions.record(
                monitoring.log_sample_rate,
                request_id=trace.request_id if trace is not None else "",
                key_id=principal.key.id,
                model=loaded.name,
                version=loaded.number,
                signature=loaded.signature,
                rule=loaded.rule,
                x=x,
                scores=scores,
            )
        if explain:
            self.metrics.explain(loaded.name, loaded.number, rows)
        return x, scores, contributions, subjects

    async def _record_decisions(
        self,
        call: InferenceCall,
        loaded: LoadedModel,
        scores: np.ndarray,
        subjects: list[str | None],
        explanations: list[dict[str, Any]] | None,
    ) -> None:
        """Hand a decision model's records to the writer; waits only when it is behind."""
        assert self.decisions is not None
        trace = TRACE.get()
        request_id = trace.request_id if trace is not None else ""
        key_id = call.principal.key.id
        policy = self.guard.policy(loaded.name)
        tenant = policy.tenant if policy is not None else call.principal.key.tenant
        alias = call.selector.recorded_alias
        now = datetime.now(UTC)
        key = self.pseudonym_key
        records = [
            Decision(
                recorded_at=now,
                request_id=request_id,
                row=row,
                subject=None if subject is None else pseudonym(key, subject),
                tenant=tenant,
                model=loaded.name,
                version=loaded.number,
                alias=alias,
                output=output,
                decision=decision,
                reasons=None if explanations is None else stored_reasons(explanations[row]),
                key_id=key_id,
            )
            for row, ((output, decision), subject) in enumerate(
                zip(loaded.rule.decisions(scores), subjects, strict=True)
            )
        ]
        await self.decisions.record(records)


async def _run(
    loaded: LoadedModel, x: np.ndarray, explain: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores and, when explaining, raw contributions, each batched with other
    requests', side by side."""
    if not explain:
        return await loaded.batcher.submit(x), None
    batcher = loaded.explain_batcher
    if batcher is None:
        loaded.explainer.check()  # raises the 501 that says why
        raise AssertionError("unreachable")
    scores, contributions = await asyncio.gather(loaded.batcher.submit(x), batcher.submit(x))
    return scores, contributions


RowDecoder = Callable[[LoadedModel], np.ndarray]


@dataclass(frozen=True, slots=True)
class RowsOnly:
    """The codec of a protocol that never explains (MLflow): only its rows."""

    decode: RowDecoder

    def explain(self) -> ExplainAsk | None:
        return None

    def rows(self, loaded: LoadedModel) -> np.ndarray:
        return self.decode(loaded)
