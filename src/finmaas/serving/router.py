"""The data plane's route table and dispatch: KServe V1, Open Inference V2, MLflow,
and the server's probes, metrics and model repository.

Each protocol module of :mod:`finmaas.serving.routes` declares its routes (method,
path pattern, handler, what the caller needs); this module puts them in one
:class:`~finmaas.web.routing.RouteTable`, checks a route's roles, calls its handler,
and writes errors as ``{"error": "<message>"}`` (MLflow's shape on MLflow's paths),
with the status mapped once, in :mod:`finmaas.web.statuses`. Every handler that
scores calls the one pipeline, :class:`~finmaas.serving.pipeline.DataPlane`.

The key is authenticated by the app from the headers alone, before the body is read
(:meth:`Router.is_public` says which routes need none); a model the key may not see
is answered like an unknown one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import orjson

from finmaas.config import Settings
from finmaas.errors import FinmaasError, NotFound
from finmaas.monitoring.exporter import Exporter
from finmaas.security.policy import Principal, require_role
from finmaas.serving.pipeline import DataPlane
from finmaas.serving.protocols.mlflow import encode_mlflow_error
from finmaas.serving.routes import mlflow, server, v1, v2
from finmaas.serving.routes.base import Handler, caller
from finmaas.web.http import Request, Response
from finmaas.web.routing import RouteTable
from finmaas.web.statuses import error_headers, status_of

log = logging.getLogger("finmaas.serving")


def data_routes(
    plane: DataPlane, settings: Settings, exporter: Exporter | None
) -> RouteTable[Handler]:
    """Every data-plane route, in the order a path is matched."""
    return RouteTable(
        [
            *server.routes(plane, exporter),
            *v1.routes(plane, settings),
            *v2.routes(plane, settings),
            *mlflow.routes(plane, settings),
        ]
    )


class Router:
    def __init__(self, plane: DataPlane, settings: Settings, exporter: Exporter | None) -> None:
        self.plane = plane
        self.routes = data_routes(plane, settings, exporter)

    def is_public(self, method: str, path: str) -> bool:
        """Whether ``path`` answers without a key (the probes and server metadata)."""
        return self.routes.is_public(method, path)

    async def handle(self, request: Request, principal: Principal | None) -> Response:
        """Answer ``request``; ``principal`` is its caller, None only on a public route."""
        return await answered(request, self._dispatch(request, principal))

    async def _dispatch(self, request: Request, principal: Principal | None) -> Response:
        found = self.routes.match(request.method, request.path)
        if found is None:
            raise NotFound(f"no route for {request.method} {request.path[:200]}")
        route = found.route
        if route.roles:
            require_role(caller(principal), *route.roles)
        return await route.handler(request, principal, found.params)


async def answered(request: Request, work: Awaitable[Response]) -> Response:
    """``work``'s response or, when it raises, the error response in the shape of the
    protocol at the request's path (both planes write their errors through this)."""
    try:
        return await work
    except FinmaasError as exc:
        return failure(request.path, exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path[:200])
        return failure_of(request.path, 500, "internal server error")


def protocol_of(path: str) -> str:
    """The protocol label of a request path: one of a fixed set."""
    if path.startswith("/v1/"):
        return "v1"
    if path.startswith("/v2/"):
        return "v2"
    if path.startswith("/api/"):
        return "api"
    if path == "/invocations":
        return "mlflow"
    return "other"


def failure(path: str, exc: FinmaasError) -> Response:
    """The error response for ``exc`` in the shape of the protocol at ``path``."""
    return failure_of(path, status_of(exc), str(exc), error_headers(exc))


def failure_of(
    path: str, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    if path in mlflow.PATHS:
        return Response(status, encode_mlflow_error(status, message), headers=headers or [])
    return error_response(status, message, headers)


def error_response(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, orjson.dumps({"error": message}), headers=headers or [])
