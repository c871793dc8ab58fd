"""Who may change a model over ``/api``: the route's role, and the model's tenant.

A route that changes a model names the change in its path (:class:`ChangeRule`):
publishing a version of ``{name}``, approving ``{name}@{version}``, moving
``{name}:{alias}``. The path alone is enough to check it before the body is read.

A grant lets a key of another tenant *use* a model (predict, explain, read its
metadata); only an admin or a key of the model's tenant may change or approve
it. A change refused to a key of another tenant that can see the model is
audited in the model's tenant, whatever the reason given, so its auditors see
every attempt. A key that cannot see the model gets the answer an unknown name
gets, at the same cost: nothing is read or written for it, so neither the
answer nor its timing tells the key that the name exists. (Publishing and jobs
are the exception: they must say that a name is taken, 409, so that refusal
is audited too.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from finmaas.api.params import version_number
from finmaas.errors import Conflict, FinmaasError, Forbidden, Invalid, NotFound
from finmaas.registry import Registry
from finmaas.registry.names import check_alias_name
from finmaas.registry.records import Model
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal, require_role


@dataclass(frozen=True)
class ModelChange:
    """A change a route makes to model ``model``: its audit action and target, the roles
    it admits (its route's), and whether it may create the model (a publish or a job)."""

    model: str
    action: str
    target: str
    roles: tuple[str, ...]
    creating: bool = False


Target = Callable[[Mapping[str, str], bool], str | None]
"""A change's target from a route's path parameters; ``strict``: a malformed version or
alias is refused (:class:`Invalid`), else it gives None."""


def model_target(params: Mapping[str, str], strict: bool) -> str:
    """``{name}``: the model itself (a new version of it)."""
    return params["name"]


def version_target(params: Mapping[str, str], strict: bool) -> str | None:
    """``{name}@{version}``. Not strict, any run of digits is a version: the route's
    role and tenant are checked before the body, and the handler refuses the number
    after it."""
    text = params["version"]
    if strict:
        return f"{params['name']}@{version_number(text)}"
    if text.isascii() and text.isdigit() and len(text) <= 10:  # int() of 4,300 digits raises
        return f"{params['name']}@{int(text)}"
    return None


def alias_target(params: Mapping[str, str], strict: bool) -> str | None:
    """``{name}:{alias}``, of a well-formed alias name."""
    try:
        alias = check_alias_name(params["alias"])
    except Invalid:
        if strict:
            raise
        return None
    return f"{params['name']}:{alias}"


@dataclass(frozen=True)
class ChangeRule:
    """The change to model ``{name}`` that a route's path names: its audit action, and
    how its target is read from the path."""

    action: str
    target: Target
    creating: bool = False

    def of(self, params: Mapping[str, str], roles: tuple[str, ...]) -> ModelChange:
        """The change of a path with ``params`` on a route admitting ``roles``; a
        malformed version or alias is refused (:class:`Invalid`)."""
        target = self.target(params, True)
        assert target is not None  # a strict target refuses or gives a target
        return ModelChange(params["name"], self.action, target, roles, self.creating)

    def before_body(self, params: Mapping[str, str], roles: tuple[str, ...]) -> ModelChange | None:
        """:meth:`of`, or None when the version or alias is malformed: the handler says
        what is wrong with it, after the body."""
        target = self.target(params, False)
        if target is None:
            return None
        return ModelChange(params["name"], self.action, target, roles, self.creating)


class ChangeGate:
    """The role, tenant and audit checks of a change to a model (see the module)."""

    def __init__(self, registry: Registry, guard: Guard) -> None:
        self.registry = registry
        self.guard = guard

    async def authorize(self, principal: Principal, change: ModelChange) -> None:
        """Let ``principal`` make ``change`` (e.g. ``version.approve`` of a model), or refuse.

        A model the key cannot see is 404 "not found"; for a publish or a job
        (``creating``: a new name makes a new model) it is 409 "not available",
        which a new name must say anyway. A role short of the change's is 403, and so
        is a model of another tenant: "model 'x' belongs to another tenant". When
        the key is of another tenant than the model, the refusal is recorded as
        ``<action>.refused`` on the change's target in the model's tenant: one bounded
        entry per refused request.
        """
        registry, guard = self.registry, self.guard
        name = change.model
        if not change.creating:
            guard.authorize(principal, name, "metadata")
        model = await asyncio.to_thread(_existing_model, registry, name)
        foreign = model is not None and not principal.actor.acts_for(model.tenant)
        try:
            require_role(principal, *change.roles)
            if foreign:
                if change.creating and not guard.visible(principal, [name]):
                    raise Conflict(f"model name {name!r} is not available; choose another")
                raise Forbidden(f"model {name!r} belongs to another tenant")
        except FinmaasError as refused:
            if model is not None and foreign:
                tenant, reason = model.tenant, str(refused)
                await asyncio.to_thread(
                    lambda: registry.record_refusal(
                        principal.actor, change.action, change.target, tenant=tenant, reason=reason
                    )
                )
            raise


def _existing_model(registry: Registry, name: str) -> Model | None:
    try:
        return registry.get_model(name)
    except NotFound:
        return None
