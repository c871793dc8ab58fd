"""KServe V1 routes: list models, a model's status, ``:predict`` and ``:explain``.

``?version=N`` or ``?alias=A`` picks a version (``production`` by default);
``:predict?explain=true`` adds explanations, and on either verb ``reasons=K``
sets how many reason codes and ``counterfactual=true`` searches the smallest
change that flips a binary decision. The body is decoded by
:mod:`finmaas.serving.protocols.v1`, scored by the one pipeline, encoded back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finmaas.config import Settings
from finmaas.errors import Invalid
from finmaas.security.policy import Principal
from finmaas.serving.pipeline import PRODUCTION, DataPlane, ExplainAsk, InferenceCall, Selector
from finmaas.serving.pool import LoadedModel
from finmaas.serving.protocols import v1
from finmaas.serving.routes.base import Handler, Params, caller, selector_of
from finmaas.web.http import Request, Response, json_response, require_json
from finmaas.web.routing import Route

PREDICT_QUERY = frozenset({"version", "alias", "reasons", "counterfactual", "explain"})
EXPLAIN_QUERY = frozenset({"version", "alias", "reasons", "counterfactual"})


def routes(plane: DataPlane, settings: Settings) -> list[Route[Handler]]:
    handlers = V1Handlers(plane, settings.max_request_rows)
    return [
        Route("GET", "/v1/models", handlers.models, summary="models the key may see"),
        Route(
            "POST",
            "/v1/models/{name}:predict",
            handlers.predict,
            verb="predict",
            summary="score rows (explain=true adds explanations)",
        ),
        Route(
            "POST",
            "/v1/models/{name}:explain",
            handlers.explain,
            verb="explain",
            summary="score rows with reason codes",
        ),
        Route("GET", "/v1/models/{name}", handlers.status, verb="metadata", summary="status"),
    ]


class V1Handlers:
    def __init__(self, plane: DataPlane, max_rows: int) -> None:
        self.plane = plane
        self.max_rows = max_rows

    async def models(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        names = self.plane.guard.visible(caller(principal), self.plane.pool.model_names())
        return json_response({"models": names})

    async def status(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        name = params["name"]
        loaded = await self.plane.model(caller(principal), name, selector_of(request), "metadata")
        return json_response({"name": name, "version": str(loaded.number), "ready": True})

    async def predict(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        return await self._infer(request, caller(principal), params["name"], explain_verb=False)

    async def explain(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        return await self._infer(request, caller(principal), params["name"], explain_verb=True)

    async def _infer(
        self, request: Request, principal: Principal, name: str, *, explain_verb: bool
    ) -> Response:
        require_json(request)
        selector, ask = _query(request, explain_verb)
        if explain_verb:
            verbs: tuple[str, ...] = ("explain",)
        elif ask is not None:
            verbs = ("explain", "predict")
        else:
            verbs = ("predict",)
        codec = V1Codec(request.body, self.max_rows, ask)
        call = InferenceCall(
            principal, name, selector, verbs, codec, request.header(b"x-subject-id")
        )
        done = await self.plane.infer(call)
        loaded = done.model
        predictions = loaded.rule.records(done.scores)
        if done.explanations is not None:
            if done.counterfactuals is not None:
                for explanation, found in zip(done.explanations, done.counterfactuals, strict=True):
                    explanation["counterfactual"] = found
            for prediction, explanation in zip(predictions, done.explanations, strict=True):
                prediction["explanation"] = explanation
        return Response(200, v1.encode_v1_response(loaded.name, loaded.number, predictions))


@dataclass(slots=True)
class V1Codec:
    body: bytes
    max_rows: int
    ask: ExplainAsk | None

    def explain(self) -> ExplainAsk | None:
        return self.ask

    def rows(self, loaded: LoadedModel) -> np.ndarray:
        return v1.decode_v1_request(self.body, loaded.encoder, self.max_rows)


_EXPLAIN = ExplainAsk()


def _query(request: Request, explain_verb: bool) -> tuple[Selector, ExplainAsk | None]:
    """``version``/``alias``; for explanations ``reasons`` and ``counterfactual`` (and
    ``explain`` on predict)."""
    if not request.query_string:
        return PRODUCTION, _EXPLAIN if explain_verb else None
    query = request.query
    allowed = EXPLAIN_QUERY if explain_verb else PREDICT_QUERY
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
    if not wants:
        return selector, None
    return selector, ExplainAsk(int(reasons) if reasons is not None else None, counterfactual)


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise Invalid(f"'{name}' must be true or false, got {value[:40]!r}")
    return value in ("true", "1")
