"""What every data-plane route module shares: the handler type and small readers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from finmaas.errors import Invalid, Unauthenticated
from finmaas.security.guard import MISSING_KEY
from finmaas.security.policy import Principal
from finmaas.serving.pipeline import PRODUCTION, Selector
from finmaas.web.http import Request, Response

Params = dict[str, str]
Handler = Callable[[Request, Principal | None, Params], Awaitable[Response]]
"""A route's handler: the request, its caller (None on a public route) and the values
of the path's parameters."""


def caller(principal: Principal | None) -> Principal:
    """The caller of a route that needs a key (the router authenticates it first)."""
    if principal is None:
        raise Unauthenticated(MISSING_KEY)
    return principal


def selector_of(request: Request) -> Selector:
    """The version a metadata route asks for: ``?version=N`` or ``?alias=A``."""
    if not request.query_string:
        return PRODUCTION
    query = request.query
    unknown = sorted(set(query) - {"version", "alias"})
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; use 'version' or 'alias'")
    return Selector.parse(query.get("version"), query.get("alias"))
