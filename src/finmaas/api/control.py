"""The control plane: ``/api`` routes for keys, model inventory and promotion, jobs,
usage and audit, dispatched through one table (:mod:`finmaas.api.routes`).

Every route names the roles it admits (function-level authorisation) and its
handler scopes what it returns to the caller's tenant unless the caller is an
admin (object-level authorisation). A grant lets a key of another tenant read a
model's metadata; only an admin or a key of the model's tenant may change or
approve it, and a change refused to a key of another tenant is audited in the
model's tenant (:mod:`finmaas.api.changes`). Registry calls run in a worker
thread.
"""

from __future__ import annotations

from finmaas.api.bodies import UploadRoute
from finmaas.api.context import Call, Services
from finmaas.api.routes import JOB_READERS, READ_MODEL, ROUTES, Endpoint
from finmaas.config import Settings
from finmaas.errors import NotFound
from finmaas.registry import ArtifactStore, Registry
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal, require_role
from finmaas.web.http import Request, Response
from finmaas.web.routing import RouteTable


class ControlPlane:
    """Answers ``/api`` requests from :data:`~finmaas.api.routes.ROUTES`."""

    def __init__(
        self, registry: Registry, guard: Guard, store: ArtifactStore, settings: Settings
    ) -> None:
        self.routes: RouteTable[Endpoint] = ROUTES
        self.services = Services.over(registry, guard, store, settings)

    async def __call__(self, request: Request, principal: Principal) -> Response:
        """Check what the route needs, in this order: the key's verb on the model
        (``verb``), then its change (the version or alias, then the change gate) or
        else its roles; then run the handler."""
        method = request.method
        found = self.routes.match(method, request.path)
        if found is None:
            self._check_unrouted(method, request.path, principal)
            raise NotFound(f"no route for {method} {request.path[:200]}")
        route, params = found.route, found.params
        if route.verb:
            self.services.guard.authorize(principal, params["name"], route.verb)
        change = route.handler.change
        if change is not None:
            await self.services.changes.authorize(principal, change.of(params, route.roles))
        elif route.roles:
            require_role(principal, *route.roles)
        return await route.handler.handle(
            self.services, Call(request, principal, params, route.roles)
        )

    async def admit_body(self, method: str, path: str, principal: Principal) -> UploadRoute | None:
        """What is checked before the body is read: for a route that takes one (any but
        a GET), its change (a version or alias that is not well-formed waits for the
        handler to say so) or its roles. Returns the route's upload parts when it takes
        an upload."""
        found = self.routes.match(method, path)
        if found is None or method == "GET":
            return None
        route, rule = found.route, found.route.handler.change
        if rule is not None:
            change = rule.before_body(found.params, route.roles)
            if change is not None:
                await self.services.changes.authorize(principal, change)
        elif route.roles:
            require_role(principal, *route.roles)
        return route.handler.upload

    def _check_unrouted(self, method: str, path: str, principal: Principal) -> None:
        """What is checked before a path without a route is answered 404 (as the nested
        dispatch the table replaced did): any path under ``/api/jobs`` needs a role that
        sees jobs, and a GET under ``/api/models/{name}/`` a key that may read the model,
        so such a path tells a key no more than the routes beside it."""
        parts = path.strip("/").split("/")[1:]
        if parts[:1] == ["jobs"]:
            require_role(principal, *JOB_READERS)
        elif method == "GET" and len(parts) > 1 and parts[0] == "models":
            self.services.guard.authorize(principal, parts[1], READ_MODEL)
