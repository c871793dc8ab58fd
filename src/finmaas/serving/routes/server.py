"""The server's own routes: probes and metadata (no key), Prometheus metrics (auditor),
and the V2 model repository (admin).

``/v2/health/live`` answers while the process runs; ``/v2/health/ready``,
``/ping`` and ``/health`` answer 200 once the pool is ready, 503 before. An
auditor's ``/metrics`` holds its tenant's models and the rows that name no model;
an admin's holds every model.
"""

from __future__ import annotations

from finmaas import __version__
from finmaas.errors import NotFound
from finmaas.monitoring.exporter import Exporter
from finmaas.security.policy import Principal
from finmaas.serving.pipeline import DataPlane
from finmaas.serving.routes.base import Handler, Params, caller
from finmaas.web.http import Request, Response, json_response
from finmaas.web.routing import Route

EXTENSIONS = ("binary_tensor_data", "model_repository")
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
TEXT = b"text/plain"


def routes(plane: DataPlane, exporter: Exporter | None) -> list[Route[Handler]]:
    handlers = ServerHandlers(plane, exporter)
    table: list[Route[Handler]] = [
        Route("GET", "/v2", handlers.metadata, public=True, summary="server metadata"),
        Route("GET", "/v2/health/live", handlers.live, public=True, summary="liveness"),
        Route("GET", "/v2/health/ready", handlers.ready, public=True, summary="readiness"),
        Route("GET", "/ping", handlers.ping, public=True, summary="readiness (MLflow)"),
        Route("GET", "/health", handlers.ping, public=True, summary="readiness (MLflow)"),
        Route("GET", "/version", handlers.version, public=True, summary="finmaas's version"),
        Route(
            "POST",
            "/v2/repository/index",
            handlers.index,
            roles=("admin",),
            summary="servable versions and whether they are loaded",
        ),
        Route(
            "POST",
            "/v2/repository/models/{name}/load",
            handlers.load,
            roles=("admin",),
            summary="load a model's production version",
        ),
        Route(
            "POST",
            "/v2/repository/models/{name}/unload",
            handlers.unload,
            roles=("admin",),
            summary="unload a model from this server",
        ),
    ]
    if exporter is not None:
        table.append(
            Route("GET", "/metrics", handlers.metrics, roles=("auditor",), summary="Prometheus")
        )
    return table


class ServerHandlers:
    def __init__(self, plane: DataPlane, exporter: Exporter | None) -> None:
        self.plane = plane
        self.pool = plane.pool
        self.exporter = exporter
        self.auth_note = {} if plane.guard.auth else {"auth": "disabled (--insecure-no-auth)"}

    async def metadata(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        return json_response(
            {
                "name": "finmaas",
                "version": __version__,
                "extensions": list(EXTENSIONS),
                **self.auth_note,
            }
        )

    async def live(self, request: Request, principal: Principal | None, params: Params) -> Response:
        return json_response({"live": True, **self.auth_note})

    async def ready(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        ready = self.pool.ready
        return json_response({"ready": ready, **self.auth_note}, 200 if ready else 503)

    async def ping(self, request: Request, principal: Principal | None, params: Params) -> Response:
        return Response(200 if self.pool.ready else 503, b"\n", TEXT)

    async def version(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        return Response(200, __version__.encode(), TEXT)

    async def index(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        """Every servable version: ``READY`` when this worker holds it loaded, else
        ``UNAVAILABLE`` with the reason (as Triton lists its repository)."""
        loaded = {(model.name, model.number) for model in self.pool.loaded()}
        servable = await self.pool.servable_versions()
        for name, number in loaded:  # archived since it was loaded: it still serves
            if number not in servable.get(name, ()):
                servable.setdefault(name, []).append(number)
        entries: list[dict[str, str]] = []
        for name in sorted(servable):
            for number in sorted(servable[name]):
                entry = {"name": name, "version": str(number), "state": "READY"}
                if (name, number) not in loaded:
                    entry["state"] = "UNAVAILABLE"
                    entry["reason"] = self._unavailable(name, number)
                entries.append(entry)
        return json_response(entries)

    def _unavailable(self, name: str, number: int) -> str:
        if name in self.pool.unloaded:
            return "unloaded from this server"
        return self.pool.errors.get((name, number), "not loaded")

    async def load(self, request: Request, principal: Principal | None, params: Params) -> Response:
        await self.pool.load_model(params["name"])
        return json_response({})

    async def unload(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        name = params["name"]
        if not self.pool.model_exists(name):
            raise NotFound(f"model {name!r} not found")
        await self.pool.unload(name)
        return json_response({})

    async def metrics(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        principal = caller(principal)
        assert self.exporter is not None
        keep = None
        if not principal.is_admin:
            tenant, guard = principal.key.tenant, self.plane.guard

            def keep(model: str) -> bool:
                policy = guard.policy(model)
                return not model or (policy is not None and policy.tenant == tenant)

        return Response(200, await self.exporter.render(keep), PROMETHEUS_TEXT)
