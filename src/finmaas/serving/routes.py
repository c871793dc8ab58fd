"""Routing of data-plane requests to protocol handlers (KServe V1, Open Inference V2).

Routes decode, call the :class:`DataPlane`, and encode; errors are mapped to
statuses once, in :mod:`finmaas.web.statuses`, and written as
``{"error": "<message>"}`` as both protocols specify.

Every route but the health probes and server metadata needs an API key; the
:class:`Guard` authenticates it, checks the model grant (an invisible model is
answered like an unknown one), applies the key's limits and meters usage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from finmaas import __version__
from finmaas.config import Settings
from finmaas.errors import (
    FinmaasError,
    Invalid,
    NotFound,
    NotSupported,
    QueueFull,
    RateLimited,
)
from finmaas.monitoring.decision_records import (
    Decision,
    DecisionWriter,
    stored_reasons,
    subject_ids,
)
from finmaas.monitoring.exporter import Exporter
from finmaas.monitoring.metrics import ServiceMetrics
from finmaas.monitoring.predictions import PredictionLog
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal, require_role
from finmaas.serving.dataplane import DataPlane, Selector
from finmaas.serving.pool import LoadedModel
from finmaas.serving.protocols import csv_body, mlflow, v1, v2
from finmaas.web.access_log import TRACE
from finmaas.web.http import Request, Response, json_response, require_json
from finmaas.web.statuses import error_headers, status_of

log = logging.getLogger("finmaas.serving")

Handler = Callable[[Request], Awaitable[Response]]
EXTENSIONS = ("binary_tensor_data", "model_repository")
MLFLOW_PATHS = frozenset({"/invocations", "/ping", "/health", "/version"})
PUBLIC_PATHS = frozenset({"/ping", "/health", "/version"})
PUBLIC_V2 = frozenset({"v2", "v2/health/live", "v2/health/ready"})
"""The GET routes that answer without a key (probes and server metadata)."""
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


ControlPlane = Callable[[Request, Principal], Awaitable[Response]]


class Router:
    def __init__(
        self,
        dataplane: DataPlane,
        settings: Settings,
        guard: Guard,
        control: ControlPlane | None = None,
        *,
        metrics: ServiceMetrics | None = None,
        exporter: Exporter | None = None,
        decisions: DecisionWriter | None = None,
        predictions: PredictionLog | None = None,
        pseudonym_key: bytes = b"",
    ) -> None:
        self.dataplane = dataplane
        self.pool = dataplane.pool
        self.settings = settings
        self.guard = guard
        self.control = control
        self.metrics = metrics or ServiceMetrics()
        self.exporter = exporter
        self.decisions = decisions
        self.predictions = predictions
        self.pseudonym_key = pseudonym_key
        self._auth_note = {} if guard.auth else {"auth": "disabled (--insecure-no-auth)"}

    def authenticate(self, method: str, path: str, headers: dict[bytes, bytes]) -> Principal | None:
        """The caller of a route that needs a key, from the headers alone, so before any
        of the body is read; ``None`` for the probes and server metadata."""
        if method == "GET" and (path in PUBLIC_PATHS or path.strip("/") in PUBLIC_V2):
            return None
        principal = self.guard.authenticate(headers)
        trace = TRACE.get()
        if trace is not None:
            trace.key_id = principal.key.id
        return principal

    async def handle(
        self, request: Request, client: str = "", principal: Principal | None = None
    ) -> Response:
        """Answer ``request``; ``principal``: its caller when :meth:`authenticate` has
        checked the key already (``None``: this checks it, after the public routes)."""
        try:
            return await self._dispatch(request, client, principal)
        except FinmaasError as exc:
            return self.failure(request.path, exc)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path[:200])
            status, message = 500, "internal server error"
        if request.path in MLFLOW_PATHS:
            return Response(status, mlflow.encode_mlflow_error(status, message))
        return error_response(status, message)

    @staticmethod
    def failure(path: str, exc: FinmaasError) -> Response:
        """The error response for ``exc`` in the shape of the protocol at ``path``."""
        status, message, headers = status_of(exc), str(exc), error_headers(exc)
        if path in MLFLOW_PATHS:
            return Response(status, mlflow.encode_mlflow_error(status, message), headers=headers)
        return error_response(status, message, headers)

    async def _dispatch(
        self, request: Request, client: str, principal: Principal | None
    ) -> Response:
        method, path = request.method, request.path
        parts = path.strip("/").split("/")
        # Probes and server metadata answer without a key.
        if parts[0] == "v2" and method == "GET":
            if len(parts) == 1:
                return self.server_metadata()
            if parts[1:] == ["health", "live"]:
                return json_response({"live": True, **self._auth_note})
            if parts[1:] == ["health", "ready"]:
                ready = self.pool.ready
                return json_response({"ready": ready, **self._auth_note}, 200 if ready else 503)
        elif path in ("/ping", "/health") and method == "GET":
            return Response(200 if self.pool.ready else 503, b"\n", b"text/plain")
        elif path == "/version" and method == "GET":
            return Response(200, __version__.encode(), b"text/plain")
        if principal is None:
            principal = self.guard.authenticate(request.headers)
            trace = TRACE.get()
            if trace is not None:
                trace.key_id = principal.key.id
        if parts == ["v1", "models"] and method == "GET":
            names = self.guard.visible(principal, self.pool.model_names())
            return json_response({"models": names})
        if parts[0] == "v1" and len(parts) == 3 and parts[1] == "models":
            name, _, verb = parts[2].partition(":")
            if verb == "predict" and method == "POST":
                return await self.v1_predict(request, principal, name)
            if verb == "explain" and method == "POST":
                return await self.v1_predict(request, principal, name, explain_verb=True)
            if not verb and method == "GET":
                return await self.v1_status(request, principal, name)
        elif parts[0] == "v2" and len(parts) >= 2:
            if len(parts) >= 3 and parts[1] == "models":
                return await self._v2_model_route(request, principal, parts[2], parts[3:])
            if parts[1] == "repository" and method == "POST":
                require_role(principal, "admin")
                return await self._v2_repository(parts[2:])
        elif parts[0] == "api" and self.control is not None:
            return await self.control(request, principal.at(client))
        elif path == "/invocations" and method == "POST":
            return await self.mlflow_invocations(request, principal)
        elif path == "/metrics" and method == "GET" and self.exporter is not None:
            return await self.prometheus_metrics(principal)
        raise NotFound(f"no route for {method} {path[:200]}")

    async def _model(
        self, principal: Principal, name: str, selector: Selector, verb: str
    ) -> LoadedModel:
        self.guard.authorize(principal, name, verb)
        loaded = await self.dataplane.model(name, selector)
        trace = TRACE.get()
        if trace is not None:
            trace.model, trace.version = loaded.name, loaded.number
        return loaded

    async def _score(
        self,
        principal: Principal,
        loaded: LoadedModel,
        decode: Callable[[], np.ndarray],
        request: Request,
        *,
        explain: bool = False,
    ) -> Scored:
        """Decode, admit under the key's limits and the model's cap, score, and meter."""
        started = time.perf_counter()
        guard, rows = self.guard, 0
        monitoring = guard.monitoring(loaded.name)
        subjects: list[str | None] | None = None
        try:
            x = decode()
            rows = x.shape[0]
            if self.decisions is not None and monitoring.decisions:
                subjects = subject_ids(request.header(b"x-subject-id"), rows)
            await guard.admit(principal, rows)
            cap = guard.cap(loaded.name)
            if cap is None:
                scored = await self._run(loaded, x, explain)
            else:
                token = await guard.limiter.enter(loaded.name, cap)
                try:
                    scored = await self._run(loaded, x, explain)
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
                x=scored.x,
                scores=scored.scores,
            )
        if explain:
            self.metrics.explain(loaded.name, loaded.number, rows)
        if subjects is not None:
            return Scored(scored.x, scored.scores, scored.contributions, subjects)
        return scored

    async def _record_decisions(
        self,
        principal: Principal,
        loaded: LoadedModel,
        selector: Selector,
        scored: Scored,
        explanations: list[dict[str, Any]] | None = None,
    ) -> None:
        """Hand a decision model's records to the writer; waits only when it is behind."""
        if scored.subjects is None or self.decisions is None:
            return
        trace = TRACE.get()
        request_id = trace.request_id if trace is not None else ""
        policy = self.guard.policy(loaded.name)
        tenant = policy.tenant if policy is not None else principal.key.tenant
        alias = selector.alias or ("production" if selector.version is None else None)
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
                score=score,
                decision=decision,
                reasons=None if explanations is None else stored_reasons(explanations[row]),
                key_id=principal.key.id,
            )
            for row, ((score, decision), subject) in enumerate(
                zip(loaded.rule.decisions(scored.scores), scored.subjects, strict=True)
            )
        ]
        await self.decisions.record(records)

    @staticmethod
    def _check_counterfactual(loaded: LoadedModel) -> None:
        if loaded.explainer.counterfactuals is None:
            raise NotSupported(
                f"counterfactuals need a binary model; {loaded.name!r} is {loaded.signature.task}"
            )

    async def _run(self, loaded: LoadedModel, x: np.ndarray, explain: bool) -> Scored:
        if not explain:
            return Scored(x, await self.dataplane.score(loaded, x))
        scores, contributions = await self.dataplane.score_and_explain(loaded, x)
        return Scored(x, scores, contributions)

    async def prometheus_metrics(self, principal: Principal) -> Response:
        """Admins see every model; an auditor sees its tenant's models and the
        rows that name no model."""
        require_role(principal, "auditor")
        assert self.exporter is not None
        keep = None
        if not principal.is_admin:
            tenant, guard = principal.key.tenant, self.guard

            def keep(model: str) -> bool:
                policy = guard.policy(model)
                return not model or (policy is not None and policy.tenant == tenant)

        body = await self.exporter.render(keep)
        return Response(200, body, PROMETHEUS_TEXT)

    # -- KServe V1 ------------------------------------------------------------

    async def v1_predict(
        self, request: Request, principal: Principal, name: str, *, explain_verb: bool = False
    ) -> Response:
        """``:predict`` (``?explain=true`` adds explanations) and ``:explain``."""
        require_json(request)
        selector, options = _v1_query(request, explain_verb)
        explain = explain_verb or options.explain
        if explain and not explain_verb:
            self.guard.authorize(principal, name, "explain")
        loaded = await self._model(
            principal, name, selector, "explain" if explain_verb else "predict"
        )
        reasons = 0
        if explain:
            loaded.explainer.check()
            reasons = loaded.explainer.check_reasons(options.reasons)
            if options.counterfactual:
                self._check_counterfactual(loaded)
        scored = await self._score(
            principal,
            loaded,
            lambda: v1.decode_v1_request(
                request.body, loaded.encoder, self.settings.max_request_rows
            ),
            request,
            explain=explain,
        )
        predictions = loaded.rule.records(scored.scores)
        explanations = None
        if scored.contributions is not None:
            explanations = loaded.explainer.rows(scored.contributions, scored.x, reasons)
            if options.counterfactual:
                found = await asyncio.to_thread(
                    loaded.explainer.counterfactual, scored.x, scored.scores
                )
                for explanation, counterfactual in zip(explanations, found, strict=True):
                    explanation["counterfactual"] = counterfactual
            for prediction, explanation in zip(predictions, explanations, strict=True):
                prediction["explanation"] = explanation
        if scored.subjects is not None:  # a decision model's (no coroutine otherwise)
            await self._record_decisions(principal, loaded, selector, scored, explanations)
        body = v1.encode_v1_response(loaded.name, loaded.number, predictions)
        return Response(200, body)

    async def v1_status(self, request: Request, principal: Principal, name: str) -> Response:
        loaded = await self._model(principal, name, _selector(request), "metadata")
        return json_response({"name": name, "version": str(loaded.number), "ready": True})

    # -- MLflow scoring protocol ------------------------------------------------

    async def mlflow_invocations(self, request: Request, principal: Principal) -> Response:
        decode_body = (
            csv_body.decode_csv_request
            if mlflow.require_mlflow_content_type(request)
            else mlflow.decode_mlflow_request
        )
        header = request.header(b"x-finmaas-model")
        chosen = header.decode("latin-1") if header is not None else self.settings.serve_model
        if not chosen:
            raise Invalid(
                "no model chosen: start finmaas serve with --model NAME[@alias] "
                "or send the X-Finmaas-Model header"
            )
        name, _, ref = chosen.partition("@")
        selector = (
            Selector.parse(ref, None)
            if ref.isascii() and ref.isdigit()
            else Selector(alias=ref or None)
        )
        loaded = await self._model(principal, name, selector, "predict")
        scored = await self._score(
            principal,
            loaded,
            lambda: decode_body(request.body, loaded.encoder, self.settings.max_request_rows),
            request,
        )
        if scored.subjects is not None:
            await self._record_decisions(principal, loaded, selector, scored)
        return Response(200, mlflow.encode_mlflow_response(loaded.rule.records(scored.scores)))

    # -- Open Inference Protocol (V2) ----------------------------------------

    def server_metadata(self) -> Response:
        return json_response(
            {
                "name": "finmaas",
                "version": __version__,
                "extensions": list(EXTENSIONS),
                **self._auth_note,
            }
        )

    async def _v2_model_route(
        self, request: Request, principal: Principal, name: str, rest: list[str]
    ) -> Response:
        selector = Selector()
        if rest[:1] == ["versions"] and len(rest) >= 2:
            selector = Selector.parse(rest[1], None)
            rest = rest[2:]
        method = request.method
        if not rest and method == "GET":
            loaded = await self._model(principal, name, selector, "metadata")
            versions = [str(v) for v in sorted(set(self.pool.aliases_of(name).values()))]
            platform = f"finmaas_{loaded.version.artifact_format}"
            return json_response(v2.model_metadata(name, versions, platform, loaded.signature))
        if rest == ["ready"] and method == "GET":
            loaded = await self._model(principal, name, selector, "metadata")
            return json_response({"name": name, "version": str(loaded.number), "ready": True})
        if rest == ["infer"] and method == "POST":
            return await self.v2_infer(request, principal, name, selector)
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def v2_infer(
        self, request: Request, principal: Principal, name: str, selector: Selector
    ) -> Response:
        header = request.header(b"inference-header-content-length")
        if header is None:
            require_json(request)
            header_length = None
        else:
            if not header.isdigit():
                raise Invalid("Inference-Header-Content-Length must be a number of bytes")
            header_length = int(header)
        loaded = await self._model(principal, name, selector, "predict")
        parsed = v2.parse_v2_request(request.body, header_length)
        explain, reasons, counterfactual = v2.explain_parameters(parsed)
        if explain:
            self.guard.authorize(principal, name, "explain")
            loaded.explainer.check()
            reasons = loaded.explainer.check_reasons(reasons)
            if counterfactual:
                self._check_counterfactual(loaded)
        scored = await self._score(
            principal,
            loaded,
            lambda: v2.tensors_to_array(
                parsed, loaded.signature, loaded.encoder, self.settings.max_request_rows
            ),
            request,
            explain=explain,
        )
        outputs = loaded.rule.outputs(scored.scores)
        explanations = None
        if scored.contributions is not None:
            explanations = loaded.explainer.rows(scored.contributions, scored.x, reasons or 0)
            outputs = {**outputs, **loaded.explainer.tensors(explanations)}
            if counterfactual:
                found = await asyncio.to_thread(
                    loaded.explainer.counterfactual, scored.x, scored.scores
                )
                texts = np.empty(len(found), dtype=object)
                texts[:] = [orjson.dumps(item).decode() for item in found]
                outputs["counterfactual"] = texts
        if scored.subjects is not None:  # a decision model's (no coroutine otherwise)
            await self._record_decisions(principal, loaded, selector, scored, explanations)
        body, json_length = v2.encode_v2_response(name, str(loaded.number), parsed, outputs)
        if json_length is None:
            return Response(200, body)
        return Response(
            200,
            body,
            b"application/octet-stream",
            [(b"inference-header-content-length", str(json_length).encode())],
        )

    async def _v2_repository(self, rest: list[str]) -> Response:
        if rest == ["index"]:
            index = []
            for loaded in self.pool.loaded():
                index.append({"name": loaded.name, "version": str(loaded.number), "state": "READY"})
            return json_response(index)
        if len(rest) == 3 and rest[0] == "models" and rest[2] in ("load", "unload"):
            name = rest[1]
            if rest[2] == "load":
                await self.pool.load_model(name)
            else:
                if not self.pool.model_exists(name):
                    raise NotFound(f"model {name!r} not found")
                await self.pool.unload(name)
            return json_response({})
        raise NotFound(f"no route for POST /v2/repository/{'/'.join(rest)[:200]}")


_PRODUCTION = Selector()


@dataclass(frozen=True)
class Scored:
    """A decoded batch, its scores and, when asked for, its raw contributions."""

    x: np.ndarray
    scores: np.ndarray
    contributions: np.ndarray | None = None
    subjects: list[str | None] | None = None
    """Set for a decision model: each row's subject id as sent (None when not sent)."""


@dataclass(frozen=True)
class V1Options:
    explain: bool = False
    reasons: int | None = None
    counterfactual: bool = False


_NO_OPTIONS = V1Options()


def _v1_query(request: Request, explain_verb: bool) -> tuple[Selector, V1Options]:
    """``version``/``alias``; for explanations ``reasons`` and ``counterfactual`` (and
    ``explain`` on predict)."""
    if not request.query_string:
        return _PRODUCTION, _NO_OPTIONS
    query = request.query
    allowed = {"version", "alias", "reasons", "counterfactual"}
    if not explain_verb:
        allowed.add("explain")
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise Invalid(
            f"unknown query parameter {unknown[0][:64]!r}; use {', '.join(sorted(allowed))}"
        )
    selector = Selector.parse(query.get("version"), query.get("alias"))
    wants = explain_verb or _flag(query, "explain")
    reasons = query.get("reasons")
    if reasons is not None and not (reasons.isascii() and reasons.isdigit()):
        raise Invalid(f"'reasons' must be a whole number, got {reasons[:40]!r}")
    counterfactual = _flag(query, "counterfactual")
    if (reasons is not None or counterfactual) and not wants:
        option = "reasons" if reasons is not None else "counterfactual"
        raise Invalid(f"'{option}' applies to explanations: add explain=true or call :explain")
    return selector, V1Options(
        wants and not explain_verb, int(reasons) if reasons is not None else None, counterfactual
    )


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise Invalid(f"'{name}' must be true or false, got {value[:40]!r}")
    return value in ("true", "1")


def _selector(request: Request) -> Selector:
    if not request.query_string:
        return _PRODUCTION
    query = request.query
    unknown = sorted(set(query) - {"version", "alias"})
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; use 'version' or 'alias'")
    return Selector.parse(query.get("version"), query.get("alias"))


def error_response(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, orjson.dumps({"error": message}), headers=headers or [])
