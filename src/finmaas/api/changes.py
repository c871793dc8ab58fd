"""Who may change a model over ``/api``: the route's role, and the model's tenant.

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
from dataclasses import dataclass

from finmaas.errors import Conflict, FinmaasError, Forbidden, NotFound
from finmaas.registry import Registry
from finmaas.registry.records import Model
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal, require_role


@dataclass(frozen=True)
class ModelChange:
    """A change a route makes to model ``model``: its audit action and target, the role
    it needs, and whether it may create the model (a publish or a job)."""

    model: str
    action: str
    target: str
    role: str
    creating: bool = False


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
            require_role(principal, change.role)
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
