"""Route tables: each plane declares its routes as data, and one lookup finds them.

A :class:`Route` says the method, the path pattern, the handler and what a caller
needs: nothing (``public``), one of some roles (``roles``), or a model verb the
inference pipeline checks against the key's grants (``verb``). The same rows are
what a route's documentation (and an OpenAPI document) is made from.

Patterns are paths whose ``{name}`` parts match one non-empty segment (no ``/``)::

    Route("POST", "/v1/models/{name}:predict", handler, verb="predict")
    Route("GET", "/v2/models/{name}/versions/{version}", handler, verb="metadata")

Lookup is a dictionary probe for the fixed paths and, for the others, the patterns
that share the path's first segment, tried in the order they were declared. Answers
are remembered per method and path (a server sees the same few paths over and over),
at most :data:`REMEMBERED` of them: a client that sends endless new paths only
empties the memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H")

_PARAMETER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_NO_PARAMETERS: dict[str, str] = {}

REMEMBERED = 4096
"""Most (method, path) lookups a table remembers; it forgets them all when full."""


@dataclass(frozen=True, slots=True)
class Route(Generic[H]):
    """One route of a plane."""

    method: str
    path: str
    handler: H
    public: bool = False
    """Answers without a key (probes, server metadata)."""
    roles: tuple[str, ...] = ()
    """The caller needs one of these roles (or ``admin``); empty: any valid key."""
    verb: str = ""
    """The model verb (``predict``, ``explain``, ``metadata``) checked per model."""
    summary: str = ""

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(_PARAMETER.findall(self.path))


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    """A route and its parameters' values; shared by every lookup of the same path,
    so ``params`` is read, never changed."""

    route: Route[H]
    params: dict[str, str]


class RouteTable(Generic[H]):
    """The routes of one plane, in declaration order."""

    def __init__(self, routes: Iterable[Route[H]]) -> None:
        self._routes: list[Route[H]] = []
        self._fixed: dict[tuple[str, str], Route[H]] = {}
        self._patterns: dict[tuple[str, str], list[tuple[re.Pattern[str], Route[H]]]] = {}
        self._seen: dict[tuple[str, str], Match[H] | None] = {}
        for route in routes:
            self._add(route)

    def _add(self, route: Route[H]) -> None:
        if not route.path.startswith("/"):
            raise ValueError(f"a route path starts with '/': {route.path!r}")
        self._routes.append(route)
        if not route.parameters:
            if (route.method, route.path) in self._fixed:
                raise ValueError(f"two routes for {route.method} {route.path}")
            self._fixed[route.method, route.path] = route
            return
        first = route.path.split("/", 2)[1]
        if "{" in first:
            raise ValueError(f"a route's first segment is fixed: {route.path!r}")
        regex = re.compile(_regex_of(route.path))
        self._patterns.setdefault((route.method, first), []).append((regex, route))

    def match(self, method: str, path: str) -> Match[H] | None:
        """The route for ``method`` and ``path`` and the values of its parameters
        (``/v2/``, like ``//v2``, is looked up as ``/v2``)."""
        key = (method, path)
        try:
            return self._seen[key]
        except KeyError:
            pass
        found = self._lookup(method, route_path(path))
        if len(self._seen) >= REMEMBERED:
            self._seen.clear()
        self._seen[key] = found
        return found

    def _lookup(self, method: str, path: str) -> Match[H] | None:
        fixed = self._fixed.get((method, path))
        if fixed is not None:
            return Match(fixed, _NO_PARAMETERS)
        candidates = self._patterns.get((method, path.split("/", 2)[1] if "/" in path else ""))
        if candidates:
            for regex, route in candidates:
                found = regex.fullmatch(path)
                if found is not None:
                    return Match(route, found.groupdict())
        return None

    def is_public(self, method: str, path: str) -> bool:
        """Whether the route at ``method`` ``path`` answers without a key (only fixed
        paths are public)."""
        route = self._fixed.get((method, route_path(path)))
        return route is not None and route.public

    def __iter__(self) -> Iterator[Route[H]]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)


def route_path(path: str) -> str:
    """``path`` as routes are looked up: without a trailing slash or doubled leading ones."""
    if path.endswith("/") or path.startswith("//"):
        return "/" + path.strip("/")
    return path


def _regex_of(path: str) -> str:
    out, at = [], 0
    for found in _PARAMETER.finditer(path):
        out.append(re.escape(path[at : found.start()]))
        out.append(f"(?P<{found.group(1)}>[^/]+)")
        at = found.end()
    out.append(re.escape(path[at:]))
    return "".join(out)
