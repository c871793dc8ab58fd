"""What auditors read: the audit trail and its verification, a request's decisions,
and usage (which every key may read for itself).

Each answer is scoped to the caller's tenant; an admin's covers every tenant.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from finmaas.api.context import Call, Services
from finmaas.api.params import query_date
from finmaas.errors import Invalid
from finmaas.monitoring.decision_records import decision_report
from finmaas.registry.audit import AuditFilter
from finmaas.registry.usage import usage_csv, usage_report
from finmaas.web.http import Response, json_response

CSV = b"text/csv; charset=utf-8"


async def audit_entries(api: Services, call: Call) -> Response:
    """Entries by ``?actor=&action=&target=``, ``?since=&until=`` (dates), ``?limit=`` (100)."""
    query = call.request.query
    unknown = set(query) - {"actor", "action", "target", "since", "until", "limit"}
    if unknown:
        raise Invalid(f"unknown query parameter {sorted(unknown)[0]!r}")
    limit = query.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 10_000:
        raise Invalid("'limit' must be a whole number from 1 to 10000")
    since, until = query_date(query, "since"), query_date(query, "until")
    where = AuditFilter(
        actor=query.get("actor"),
        action=query.get("action"),
        target=query.get("target"),
        tenant=call.tenant,
        since=_midnight(since),
        until=_midnight(until),
        limit=int(limit),
    )
    entries = await asyncio.to_thread(lambda: api.registry.audit_entries(where))
    return json_response(
        {"entries": [{**entry.__dict__, "at": entry.at.isoformat()} for entry in entries]}
    )


async def verify_audit(api: Services, call: Call) -> Response:
    """Whether the audit trail's hash chain holds, over how many entries."""
    report = await asyncio.to_thread(api.registry.verify_audit)
    return json_response(
        {"ok": report.ok, "checked": report.checked, "problem": report.problem or None}
    )


async def request_decisions(api: Services, call: Call) -> Response:
    request_id, tenant = call.params["request_id"], call.tenant
    return json_response(
        await asyncio.to_thread(lambda: decision_report(api.registry, request_id, tenant))
    )


async def usage(api: Services, call: Call) -> Response:
    """Usage rows by day, key and model; admins and auditors see every key of their
    scope, everyone else only their own. ``?format=csv`` for CSV."""
    query, principal = call.request.query, call.principal
    unknown = set(query) - {"since", "until", "model", "key", "format"}
    if unknown:
        raise Invalid(f"unknown query parameter {sorted(unknown)[0]!r}")
    tenant = call.tenant
    key_id = query.get("key")
    if principal.role not in ("admin", "auditor"):
        key_id = principal.key.id  # everyone else sees only their own key
    since, until = query_date(query, "since"), query_date(query, "until")
    rows = await asyncio.to_thread(
        lambda: api.usage.query(
            tenant=tenant, key_id=key_id, model=query.get("model"), since=since, until=until
        )
    )
    if query.get("format") == "csv":
        return Response(200, usage_csv(rows).encode(), CSV)
    return json_response(usage_report(rows))


def _midnight(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
