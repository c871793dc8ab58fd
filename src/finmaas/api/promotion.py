"""Promotion routes: a validator approves or rejects a version, a developer moves an
alias or rolls it back.

The table has let each change through the change gate (role, tenant, audit of a
refusal) with its version or alias checked, before any of these handlers runs.
"""

from __future__ import annotations

import asyncio

from finmaas.api.bodies import json_object
from finmaas.api.context import Call, Services
from finmaas.api.params import version_number
from finmaas.errors import Forbidden, Invalid
from finmaas.web.http import Response, json_response


async def approve_version(api: Services, call: Call) -> Response:
    return await _decide(api, call, "approved")


async def reject_version(api: Services, call: Call) -> Response:
    return await _decide(api, call, "rejected")


async def set_alias(api: Services, call: Call) -> Response:
    """Point the alias at ``{"version": n}``; ``"accept_signature_change": true`` moves it
    to a version whose task, classes or positive class differ from its current one's."""
    name, alias = await _movable_alias(api, call)
    body = json_object(call.request, frozenset({"version", "accept_signature_change"}))
    raw = body.get("version")
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 2**31:
        raise Invalid("'version' must be a whole number from 1 to 2147483647")
    accept = body.get("accept_signature_change", False)
    if not isinstance(accept, bool):
        raise Invalid("'accept_signature_change' must be true or false")
    actor = call.principal.actor
    moved = await asyncio.to_thread(
        lambda: api.registry.set_alias(
            name, alias, raw, actor=actor, accept_signature_change=accept
        )
    )
    return json_response({"model": name, "alias": alias, "version": moved.version})


async def rollback_alias(api: Services, call: Call) -> Response:
    """Point the alias back at the version it pointed at before."""
    name, alias = await _movable_alias(api, call)
    actor = call.principal.actor
    moved = await asyncio.to_thread(lambda: api.registry.rollback_alias(name, alias, actor=actor))
    return json_response({"model": name, "alias": alias, "version": moved.version})


async def _decide(api: Services, call: Call, decision: str) -> Response:
    name, version = call.params["name"], version_number(call.params["version"])
    note = json_object(call.request, frozenset({"note"})).get("note", "")
    if not isinstance(note, str):
        raise Invalid("'note' must be text")
    actor = call.principal.actor
    approval = await asyncio.to_thread(
        lambda: api.registry.decide(name, version, decision, note=note, actor=actor)
    )
    return json_response(
        {
            "model": name,
            "version": version,
            "decision": approval.decision,
            "actor": approval.actor,
            "at": approval.at.isoformat(),
        }
    )


async def _movable_alias(api: Services, call: Call) -> tuple[str, str]:
    """The model and alias of the path; a protected alias moves for an admin only."""
    name, alias = call.params["name"], call.params["alias"]
    if not call.principal.is_admin:
        model = await asyncio.to_thread(lambda: api.registry.get_model(name))
        if alias in model.protected_aliases:
            raise Forbidden(
                f"alias {alias!r} of model {name!r} is protected; only an admin may move it"
            )
    return name, alias
