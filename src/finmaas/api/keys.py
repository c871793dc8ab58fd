"""Key routes: the caller's key, and issuing, listing, revoking and rotating keys.

Admins write keys; auditors read those of their own tenant (admins, every tenant's).
A secret is shown once, when it is issued or rotated.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from finmaas.api.bodies import json_object
from finmaas.api.context import Call, Services
from finmaas.errors import Invalid, NotFound
from finmaas.registry.key_store import KeyRecord
from finmaas.security import key_secrets
from finmaas.security.policy import check_grants
from finmaas.web.http import Response, json_response

KEY_FIELDS = frozenset(
    {
        "name",
        "role",
        "tenant",
        "owner",
        "grants",
        "expires_at",
        "requests_per_minute",
        "rows_per_minute",
        "monthly_quota",
        "tokens_per_minute",
        "monthly_token_quota",
    }
)


async def whoami(api: Services, call: Call) -> Response:
    key = call.principal.key
    return json_response(
        {"key_id": key.id, "name": key.name, "role": key.role, "tenant": key.tenant}
    )


async def create_key(api: Services, call: Call) -> Response:
    body = json_object(call.request, KEY_FIELDS)
    spec = _key_spec(body)
    issued = await asyncio.to_thread(
        lambda: key_secrets.issue_key(api.keys, actor=call.principal.actor, **spec)
    )
    return json_response({"key": issued.record.public(), "secret": issued.token}, 201)


async def list_keys(api: Services, call: Call) -> Response:
    """``?all=1`` (or ``true``) lists revoked keys too."""
    tenant = call.tenant
    include_revoked = call.request.query.get("all") in ("1", "true")
    keys = await asyncio.to_thread(
        lambda: api.keys.list(tenant=tenant, include_revoked=include_revoked)
    )
    return json_response({"keys": [key.public() for key in keys]})


async def show_key(api: Services, call: Call) -> Response:
    """A key of another tenant is answered like an unknown one."""
    key_id = call.params["key_id"]
    key: KeyRecord | None
    try:
        key = await asyncio.to_thread(lambda: api.keys.get(key_id))
    except NotFound:
        key = None
    if key is None or not (call.principal.is_admin or key.tenant == call.principal.tenant):
        raise NotFound(f"key {key_id[:40]!r} not found")
    return json_response(key.public())


async def revoke_key(api: Services, call: Call) -> Response:
    key_id, actor = call.params["key_id"], call.principal.actor
    key = await asyncio.to_thread(lambda: api.keys.revoke(key_id, actor=actor))
    return json_response({"key": key.public()})


async def rotate_key(api: Services, call: Call) -> Response:
    key_id, actor = call.params["key_id"], call.principal.actor
    issued = await asyncio.to_thread(lambda: key_secrets.rotate_key(api.keys, key_id, actor=actor))
    return json_response({"key": issued.record.public(), "secret": issued.token})


def _key_spec(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for field in ("name", "role"):
        if not isinstance(body.get(field), str):
            raise Invalid(f"'{field}' is required and must be text")
        spec[field] = body[field]
    for field in ("tenant", "owner"):
        if field in body:
            if not isinstance(body[field], str):
                raise Invalid(f"'{field}' must be text")
            spec[field] = body[field]
    spec["grants"] = check_grants(body.get("grants"))
    for field in (
        "requests_per_minute",
        "rows_per_minute",
        "monthly_quota",
        "tokens_per_minute",
        "monthly_token_quota",
    ):
        value = body.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(f"'{field}' must be a whole number")
        spec[field] = value
    expires = body.get("expires_at")
    if expires is not None:
        try:
            spec["expires_at"] = datetime.fromisoformat(expires)
        except (TypeError, ValueError):
            raise Invalid("'expires_at' must be an ISO 8601 time with a zone") from None
    return spec
