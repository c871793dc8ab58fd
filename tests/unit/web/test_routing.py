"""Route tables: fixed paths, parameters, declaration order, refusals of bad tables."""

from __future__ import annotations

import pytest

from finmaas.web import routing
from finmaas.web.routing import Route, RouteTable

TABLE: RouteTable[str] = RouteTable(
    [
        Route("GET", "/v2/health/live", "live", public=True),
        Route("GET", "/v2/models/{name}", "metadata", verb="metadata"),
        Route("GET", "/v2/models/{name}/versions/{version}", "version", verb="metadata"),
        Route("POST", "/v1/models/{name}:predict", "predict", verb="predict"),
        Route("POST", "/v1/models/{name}:explain", "explain", verb="explain"),
        Route("POST", "/api/keys", "create", roles=("admin",)),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        ("GET", "/v2/health/live", "live", {}),
        ("GET", "/v2/models/credit-risk", "metadata", {"name": "credit-risk"}),
        ("GET", "/v2/models/a/versions/3", "version", {"name": "a", "version": "3"}),
        ("POST", "/v1/models/credit-risk:predict", "predict", {"name": "credit-risk"}),
        ("POST", "/v1/models/x.y_z:explain", "explain", {"name": "x.y_z"}),
        ("POST", "/api/keys", "create", {}),
    ],
)
def test_a_path_finds_its_route_and_parameters(
    method: str, path: str, handler: str, params: dict[str, str]
) -> None:
    found = TABLE.match(method, path)
    assert found is not None
    assert (found.route.handler, found.params) == (handler, params)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/health/live"),  # another method
        ("GET", "/v2/models/"),  # an empty parameter
        ("GET", "/v2/models/a/b"),  # a segment too many
        ("POST", "/v1/models/a:score"),  # an unknown verb
        ("POST", "/v1/models/a/b:predict"),  # a parameter never spans a '/'
        ("GET", "/"),
        ("GET", ""),
        ("GET", "/nowhere"),
    ],
)
def test_a_path_without_a_route_finds_none(method: str, path: str) -> None:
    assert TABLE.match(method, path) is None


def test_only_fixed_public_routes_are_public() -> None:
    assert TABLE.is_public("GET", "/v2/health/live")
    assert not TABLE.is_public("GET", "/v2/models/a")
    assert not TABLE.is_public("POST", "/api/keys")


def test_the_table_keeps_the_declared_order_and_names_parameters() -> None:
    assert [route.handler for route in TABLE][:2] == ["live", "metadata"]
    assert len(TABLE) == 6
    assert TABLE.match("GET", "/v2/models/a/versions/1").route.parameters == (  # type: ignore[union-attr]
        "name",
        "version",
    )


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([Route("GET", "v2", "x")], "a route path starts with '/': 'v2'"),
        ([Route("GET", "/{name}", "x")], "a route's first segment is fixed: '/{name}'"),
        ([Route("GET", "/a", "x"), Route("GET", "/a", "y")], "two routes for GET /a"),
    ],
)
def test_a_bad_table_is_refused_when_built(routes: list[Route[str]], message: str) -> None:
    with pytest.raises(ValueError, match="route") as raised:
        RouteTable(routes)
    assert str(raised.value) == message


@pytest.mark.parametrize("path", ["/v2/health/live/", "//v2/health/live", "/v2/health/live//"])
def test_trailing_and_doubled_slashes_find_the_same_route(path: str) -> None:
    found = TABLE.match("GET", path)
    assert found is not None
    assert found.route.handler == "live"
    assert TABLE.is_public("GET", path)


def test_lookups_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "REMEMBERED", 3)
    table = RouteTable([Route("GET", "/v1/models/{name}", "status")])
    first = table.match("GET", "/v1/models/a")
    assert first is not None
    assert table.match("GET", "/v1/models/a") is first
    for name in "bcdefgh":  # endless new paths only empty the memory
        found = table.match("GET", f"/v1/models/{name}")
        assert found is not None
        assert found.params == {"name": name}
        assert len(table._seen) <= 3
    assert table.match("GET", "/nowhere") is None
    assert table.match("GET", "/nowhere") is None
