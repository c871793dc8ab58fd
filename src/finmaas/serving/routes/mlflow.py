"""MLflow's scoring protocol: ``POST /invocations`` (JSON or CSV) for one model.

The model is the server's ``--model NAME[@alias|@version]`` or the request's
``X-Finmaas-Model`` header. ``/ping``, ``/health`` and ``/version`` are the
server routes of :mod:`.server`; errors on these paths take MLflow's shape.
"""

from __future__ import annotations

import numpy as np

from finmaas.config import Settings
from finmaas.errors import Invalid
from finmaas.security.policy import Principal
from finmaas.serving.pipeline import DataPlane, InferenceCall, RowsOnly, Selector
from finmaas.serving.pool import LoadedModel
from finmaas.serving.protocols import csv_body, mlflow
from finmaas.serving.routes.base import Handler, Params, caller
from finmaas.web.http import Request, Response
from finmaas.web.routing import Route

PATHS = frozenset({"/invocations", "/ping", "/health", "/version"})
"""The paths whose errors are written in MLflow's shape."""


def routes(plane: DataPlane, settings: Settings) -> list[Route[Handler]]:
    handlers = MlflowHandlers(plane, settings)
    return [
        Route("POST", "/invocations", handlers.invocations, verb="predict", summary="score rows"),
    ]


class MlflowHandlers:
    def __init__(self, plane: DataPlane, settings: Settings) -> None:
        self.plane = plane
        self.max_rows = settings.max_request_rows
        self.serve_model = settings.serve_model

    async def invocations(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        principal = caller(principal)
        decode_body = (
            csv_body.decode_csv_request
            if mlflow.require_mlflow_content_type(request)
            else mlflow.decode_mlflow_request
        )
        header = request.header(b"x-finmaas-model")
        chosen = header.decode("latin-1") if header is not None else self.serve_model
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
        body, max_rows = request.body, self.max_rows

        def rows(loaded: LoadedModel) -> np.ndarray:
            return decode_body(body, loaded.encoder, max_rows)

        call = InferenceCall(
            principal, name, selector, ("predict",), RowsOnly(rows), request.header(b"x-subject-id")
        )
        done = await self.plane.infer(call)
        return Response(200, mlflow.encode_mlflow_response(done.model.rule.records(done.scores)))
