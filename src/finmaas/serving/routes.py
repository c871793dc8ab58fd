"""Routing of data-plane requests to protocol handlers (KServe V1, Open Inference V2).

Routes decode, call the :class:`DataPlane`, and encode; errors are mapped to
statuses once, in :mod:`finmaas.serving.errors`, and written as
``{"error": "<message>"}`` as both protocols specify.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from finmaas import __version__
from finmaas.config import Settings
from finmaas.errors import FinmaasError, Invalid, NotFound
from finmaas.serving.dataplane import DataPlane, Selector
from finmaas.serving.errors import status_of
from finmaas.serving.http import Request, Response, json_response, require_json
from finmaas.serving.protocols import mlflow, v1, v2

log = logging.getLogger("finmaas.serving")

Handler = Callable[[Request], Awaitable[Response]]
EXTENSIONS = ("binary_tensor_data", "model_repository")
MLFLOW_PATHS = frozenset({"/invocations", "/ping", "/health", "/version"})


class Router:
    def __init__(self, dataplane: DataPlane, settings: Settings) -> None:
        self.dataplane = dataplane
        self.pool = dataplane.pool
        self.settings = settings

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except FinmaasError as exc:
            status, message = status_of(exc), str(exc)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            status, message = 500, "internal server error"
        if request.path in MLFLOW_PATHS:
            return Response(status, mlflow.encode_mlflow_error(status, message))
        return error_response(status, message)

    async def _dispatch(self, request: Request) -> Response:
        method, path = request.method, request.path
        parts = path.strip("/").split("/")
        if parts == ["v1", "models"] and method == "GET":
            return json_response({"models": self.pool.model_names()})
        if parts[0] == "v1" and len(parts) == 3 and parts[1] == "models":
            name, _, verb = parts[2].partition(":")
            if verb == "predict" and method == "POST":
                return await self.v1_predict(request, name)
            if not verb and method == "GET":
                return await self.v1_status(request, name)
        elif parts[0] == "v2":
            if len(parts) == 1 and method == "GET":
                return self.server_metadata()
            if parts[1:] == ["health", "live"] and method == "GET":
                return json_response({"live": True})
            if parts[1:] == ["health", "ready"] and method == "GET":
                ready = self.pool.ready
                return json_response({"ready": ready}, 200 if ready else 503)
            if len(parts) >= 3 and parts[1] == "models":
                return await self._v2_model_route(request, parts[2], parts[3:])
            if parts[1] == "repository" and method == "POST":
                return await self._v2_repository(parts[2:])
        elif path == "/invocations" and method == "POST":
            return await self.mlflow_invocations(request)
        elif path in ("/ping", "/health") and method == "GET":
            return Response(200 if self.pool.ready else 503, b"\n", b"text/plain")
        elif path == "/version" and method == "GET":
            return Response(200, __version__.encode(), b"text/plain")
        raise NotFound(f"no route for {method} {path[:200]}")

    # -- KServe V1 ------------------------------------------------------------

    async def v1_predict(self, request: Request, name: str) -> Response:
        require_json(request)
        selector = _selector(request)
        loaded = await self.dataplane.model(name, selector)
        x = v1.decode_v1_request(request.body, loaded.encoder, self.settings.max_request_rows)
        scores = await self.dataplane.score(loaded, x)
        body = v1.encode_v1_response(loaded.name, loaded.number, loaded.rule.records(scores))
        return Response(200, body)

    async def v1_status(self, request: Request, name: str) -> Response:
        loaded = await self.dataplane.model(name, _selector(request))
        return json_response({"name": name, "version": str(loaded.number), "ready": True})

    # -- MLflow scoring protocol ------------------------------------------------

    async def mlflow_invocations(self, request: Request) -> Response:
        require_json(request)
        header = request.header(b"x-finmaas-model")
        chosen = header.decode("latin-1") if header is not None else self.settings.serve_model
        if not chosen:
            raise Invalid(
                "no model chosen: start finmaas serve with --model NAME[@alias] "
                "or send the X-Finmaas-Model header"
            )
        name, _, ref = chosen.partition("@")
        selector = Selector.parse(ref, None) if ref.isdigit() else Selector(alias=ref or None)
        loaded = await self.dataplane.model(name, selector)
        x = mlflow.decode_mlflow_request(
            request.body, loaded.encoder, self.settings.max_request_rows
        )
        scores = await self.dataplane.score(loaded, x)
        return Response(200, mlflow.encode_mlflow_response(loaded.rule.records(scores)))

    # -- Open Inference Protocol (V2) ----------------------------------------

    def server_metadata(self) -> Response:
        return json_response(
            {"name": "finmaas", "version": __version__, "extensions": list(EXTENSIONS)}
        )

    async def _v2_model_route(self, request: Request, name: str, rest: list[str]) -> Response:
        selector = Selector()
        if rest[:1] == ["versions"] and len(rest) >= 2:
            selector = Selector.parse(rest[1], None)
            rest = rest[2:]
        method = request.method
        if not rest and method == "GET":
            loaded = await self.dataplane.model(name, selector)
            versions = [str(v) for v in sorted(set(self.pool.aliases_of(name).values()))]
            platform = f"finmaas_{loaded.version.artifact_format}"
            return json_response(v2.model_metadata(name, versions, platform, loaded.signature))
        if rest == ["ready"] and method == "GET":
            loaded = await self.dataplane.model(name, selector)
            return json_response({"name": name, "version": str(loaded.number), "ready": True})
        if rest == ["infer"] and method == "POST":
            return await self.v2_infer(request, name, selector)
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def v2_infer(self, request: Request, name: str, selector: Selector) -> Response:
        header = request.header(b"inference-header-content-length")
        if header is None:
            require_json(request)
            header_length = None
        else:
            if not header.isdigit():
                raise Invalid("Inference-Header-Content-Length must be a number of bytes")
            header_length = int(header)
        parsed = v2.parse_v2_request(request.body, header_length)
        loaded = await self.dataplane.model(name, selector)
        x = v2.tensors_to_array(
            parsed, loaded.signature, loaded.encoder, self.settings.max_request_rows
        )
        scores = await self.dataplane.score(loaded, x)
        body, json_length = v2.encode_v2_response(
            name, str(loaded.number), parsed, loaded.rule.outputs(scores)
        )
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
                await self.pool.get(name)
            else:
                if not self.pool.model_exists(name):
                    raise NotFound(f"model {name!r} not found")
                await self.pool.unload(name)
            return json_response({})
        raise NotFound(f"no route for POST /v2/repository/{'/'.join(rest)[:200]}")


_PRODUCTION = Selector()


def _selector(request: Request) -> Selector:
    if not request.query_string:
        return _PRODUCTION
    query = request.query
    unknown = sorted(set(query) - {"version", "alias"})
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; use 'version' or 'alias'")
    return Selector.parse(query.get("version"), query.get("alias"))


def error_response(status: int, message: str) -> Response:
    return Response(status, orjson.dumps({"error": message}))
