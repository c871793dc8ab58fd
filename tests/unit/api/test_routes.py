"""The control plane's route table: every route has an authorisation test, what each
route needs is declared where admit_body can see it, and the changes paths name."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from finmaas.api.changes import ChangeRule, ModelChange
from finmaas.api.routes import ROUTES
from finmaas.errors import Invalid
from tests.integration.serving.test_tenant_authz import REFUSALS

ANY_KEY = {
    # routes any valid key may call: there is no refusal to test, only what each answer
    # shows (test_a_grant_lets_another_tenant_read_but_each_tenant_sees_only_its_own)
    ("GET", "/api/whoami"): "the caller's own key",
    ("GET", "/api/models"): "only the models the key sees",
    ("GET", "/api/usage"): "only the key's own usage, its tenant's for an auditor",
}


def _route_of(method: str, path: str) -> tuple[str, str]:
    found = ROUTES.match(method, path.format(a_validator="k1", job="j1"))
    assert found is not None, f"no route for {method} {path}"
    return method, found.route.path


def test_every_route_is_refused_somewhere_in_the_tenant_authz_table_or_says_why_not() -> None:
    refused = {_route_of(method, path) for _, method, path, *_ in REFUSALS}
    assert not refused & set(ANY_KEY)
    assert {(route.method, route.path) for route in ROUTES} == refused | set(ANY_KEY)


def test_a_route_any_key_may_call_needs_nothing() -> None:
    for route in ROUTES:
        if (route.method, route.path) in ANY_KEY:
            assert (route.roles, route.verb, route.handler.change) == ((), "", None)


def test_what_a_route_needs_is_known_from_its_path_before_its_body() -> None:
    for route in ROUTES:
        if route.method != "GET":  # a body: admit_body checks the role (or change) first
            assert route.roles, f"{route.method} {route.path} admits any key"
            assert not route.verb
        if route.verb or route.handler.change is not None:
            assert route.parameters[0] == "name", route.path
        if route.handler.upload is not None:
            assert route.method == "POST"
    assert [route.path for route in ROUTES if route.handler.upload is not None] == [
        "/api/models/{name}/versions",
        "/api/jobs",
    ]


@pytest.mark.parametrize(
    ("method", "path", "change"),
    [
        (
            "POST",
            "/api/models/m/versions",
            ModelChange("m", "version.publish", "m", ("developer",), creating=True),
        ),
        (
            "POST",
            "/api/models/m/versions/07/approve",
            ModelChange("m", "version.approve", "m@7", ("validator",)),
        ),
        (
            "POST",
            "/api/models/m/versions/2/reject",
            ModelChange("m", "version.reject", "m@2", ("validator",)),
        ),
        (
            "PUT",
            "/api/models/m/aliases/staging",
            ModelChange("m", "alias.set", "m:staging", ("developer",)),
        ),
        (
            "POST",
            "/api/models/m/aliases/production/rollback",
            ModelChange("m", "alias.rollback", "m:production", ("developer",)),
        ),
    ],
)
def test_a_path_names_its_change_before_the_body_and_after_it(
    method: str, path: str, change: ModelChange
) -> None:
    rule, params, roles = _change_rule(method, path)
    assert rule.before_body(params, roles) == rule.of(params, roles) == change


@pytest.mark.parametrize(
    ("method", "path", "before_body", "message"),
    [
        # any digits are checked before the body; the handler refuses the number after it
        ("POST", "/api/models/m/versions/0/approve", "m@0", "got '0'"),
        ("POST", "/api/models/m/versions/2147483648/reject", "m@2147483648", "got '2147483648'"),
        ("POST", "/api/models/m/versions/v2/approve", None, "got 'v2'"),
        ("PUT", "/api/models/m/aliases/Prod", None, "alias 'Prod' must start with a lowercase"),
        ("POST", "/api/models/m/aliases/-x/rollback", None, "alias '-x' must start with"),
    ],
)
def test_a_malformed_version_or_alias_waits_for_the_handler_to_be_refused(
    method: str, path: str, before_body: str | None, message: str
) -> None:
    rule, params, roles = _change_rule(method, path)
    change = rule.before_body(params, roles)
    assert (change.target if change is not None else None) == before_body
    with pytest.raises(Invalid, match=re.escape(message)):
        rule.of(params, roles)


def _change_rule(method: str, path: str) -> tuple[ChangeRule, Mapping[str, str], tuple[str, ...]]:
    found = ROUTES.match(method, path)
    assert found is not None
    rule = found.route.handler.change
    assert rule is not None
    return rule, found.params, found.route.roles
