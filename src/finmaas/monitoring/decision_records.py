"""Decision records: every decision a decision model serves, kept durably and found again.

A record holds when, which request (its ``X-Request-ID``), a pseudonymous
subject (a keyed hash of the ``X-Subject-ID`` the client sent, never the id
itself), which model, version and alias, the model's output (a probability, or
a regression's value: never the scorecard points V1 calls ``score``), the
decision, the reason codes when the request asked for an explanation, and the
key id. It holds no input value, so no raw personal data.

The request path hands records to a :class:`DecisionWriter` and goes on; the
writer inserts them in batches off the request path. It never drops one: a
worker holds at most ``max_pending`` unwritten records, and a request that
would go past that waits until the writer catches up (back-pressure), and a
failed insert is retried. On a clean stop the writer empties its buffer first.
A crash (SIGKILL, power loss) can lose what was not yet written: at most
``FLUSH_INTERVAL`` seconds of records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from finmaas.background import cancel
from finmaas.errors import Invalid, NotFound
from finmaas.registry import Registry
from finmaas.registry.registry import Who, as_actor
from finmaas.registry.tables import decisions

log = logging.getLogger("finmaas.monitoring")

FLUSH_INTERVAL = 0.2
"""Seconds between inserts; also the most a crash can lose."""
BATCH = 2000
"""Most records in one insert."""
RETRY_AFTER = 1.0
CLOSING_RETRIES = 5
"""Failed inserts a stopping server tries before it gives up (and says how many it lost)."""
PURGE_INTERVAL = 3600.0
RETENTION_ACTOR = "system:retention"
_SUBJECT = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
MAX_SUBJECT_HEADER = 64 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class Decision:
    """One served row's decision, as stored."""

    recorded_at: datetime
    request_id: str
    row: int
    subject: str | None
    tenant: str
    model: str
    version: int
    alias: str | None
    output: float
    """P(positive class) for a binary model, the top class's probability for a
    multiclass one, the value for a regression (stored in the ``score`` column)."""
    decision: str
    reasons: list[dict[str, Any]] | None
    key_id: str | None

    def to_json(self, task: str) -> dict[str, Any]:
        """The record as the API and CLI show it: ``output`` is named ``probability``,
        or ``value`` for a regression (``task``: the version's)."""
        return {
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "request_id": self.request_id,
            "row": self.row,
            "subject": self.subject,
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            output_name(task): self.output,
            "decision": self.decision,
            "reasons": self.reasons,
            "key_id": self.key_id,
        }


def subject_ids(header: bytes | None, rows: int) -> list[str | None]:
    """The ``X-Subject-ID`` header: one id per row, comma-separated (or none at all)."""
    if header is None:
        return [None] * rows
    if len(header) > MAX_SUBJECT_HEADER:
        raise Invalid(f"X-Subject-ID is longer than {MAX_SUBJECT_HEADER} bytes")
    ids = [part.strip() for part in header.decode("latin-1").split(",")]
    if len(ids) != rows:
        raise Invalid(
            f"X-Subject-ID names {len(ids)} subject(s) but the request has {rows} row(s); "
            "send one id per row, comma-separated"
        )
    for subject in ids:
        if not _SUBJECT.fullmatch(subject):
            raise Invalid("each X-Subject-ID must be 1-128 letters, digits or . _ : @ -")
    return list(ids)


def output_name(task: str) -> str:
    """What a record's output is called for a version of ``task``."""
    return "value" if task == "regression" else "probability"


def stored_reasons(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """Reason codes without the applicant's values: feature, text and effects only."""
    return [
        {key: value for key, value in reason.items() if key != "value"}
        for reason in explanation["reasons"]
    ]


class DecisionStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, records: Sequence[Decision]) -> None:
        if not records:
            return
        with self.registry.write() as conn:
            conn.execute(
                sa.insert(decisions),
                [
                    {
                        "recorded_at": r.recorded_at,
                        "request_id": r.request_id,
                        "row": r.row,
                        "subject": r.subject,
                        "tenant": r.tenant,
                        "model": r.model,
                        "version": r.version,
                        "alias": r.alias,
                        "score": r.output,
                        "decision": r.decision,
                        "reasons": r.reasons,
                        "key_id": r.key_id,
                    }
                    for r in records
                ],
            )

    def find(self, request_id: str, tenant: str | None = None) -> list[Decision]:
        """A request's decisions in row order; ``tenant`` limits them to one tenant's."""
        query = sa.select(decisions).where(decisions.c.request_id == request_id)
        if tenant is not None:
            query = query.where(decisions.c.tenant == tenant)
        with self.registry.read() as conn:
            rows = conn.execute(query.order_by(decisions.c.row, decisions.c.id)).mappings()
            return [_decision(row) for row in rows]

    def count(self) -> int:
        with self.registry.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def purge(self, before: datetime, *, actor: Who) -> int:
        """Delete the records older than ``before``, audited in the same transaction
        when any were deleted; returns how many."""
        with self.registry.write() as conn:
            result = conn.execute(sa.delete(decisions).where(decisions.c.recorded_at < before))
            deleted = int(result.rowcount or 0)
            if deleted:
                after = {"before": before.isoformat(), "deleted": deleted}
                who = as_actor(actor)  # every tenant's records: the operator's own entry
                self.registry.audit(
                    conn, who, "decisions.purge", "decisions", tenant=who.tenant, after=after
                )
            return deleted


def _decision(row: Any) -> Decision:
    recorded = row["recorded_at"]
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=UTC)
    return Decision(
        recorded_at=recorded,
        request_id=row["request_id"],
        row=row["row"],
        subject=row["subject"],
        tenant=row["tenant"],
        model=row["model"],
        version=row["version"],
        alias=row["alias"],
        output=row["score"],
        decision=row["decision"],
        reasons=row["reasons"],
        key_id=row["key_id"],
    )


class DecisionWriter:
    """Buffers a worker's decision records and inserts them off the request path."""

    def __init__(
        self,
        store: DecisionStore,
        *,
        max_pending: int,
        retention: timedelta,
        now: Any,
    ) -> None:
        self.store = store
        self.max_pending = max_pending
        self.retention = retention
        self.now = now
        self._buffer: deque[Decision] = deque()
        self._writing = 0
        self._room = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def backlog(self) -> int:
        return len(self._buffer) + self._writing

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="finmaas-decisions")
        self._purge_task = asyncio.create_task(self._purge_forever(), name="finmaas-purge")

    async def record(self, records: list[Decision]) -> None:
        """Queue a request's records; waits while the worker holds ``max_pending``."""
        if self.backlog + len(records) > self.max_pending and self.backlog:
            self._wake.set()
            async with self._room:
                await self._room.wait_for(
                    lambda: self.backlog == 0 or self.backlog + len(records) <= self.max_pending
                )
        self._buffer.extend(records)
        if len(self._buffer) >= BATCH:
            self._wake.set()

    async def close(self) -> None:
        """Write everything buffered, then stop."""
        self._closing = True
        await cancel(self._purge_task)
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._buffer:
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
                self._wake.clear()
                continue
            batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
            self._writing = len(batch)
            try:
                await asyncio.to_thread(self.store.add, batch)
            except Exception as exc:
                self._writing = 0
                failures += 1
                if self._closing and failures >= CLOSING_RETRIES:
                    log.error(
                        "stopping with %d decision records unwritten: %s",
                        len(batch) + len(self._buffer),
                        exc,
                    )
                    return
                log.error("could not write %d decision records (will retry): %s", len(batch), exc)
                self._buffer.extendleft(reversed(batch))
                await asyncio.sleep(RETRY_AFTER)
                continue
            failures = 0
            self._writing = 0
            async with self._room:
                self._room.notify_all()
            if len(self._buffer) < BATCH and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
                self._wake.clear()

    async def _purge_forever(self) -> None:
        while True:
            try:
                purged = await asyncio.to_thread(
                    lambda: self.store.purge(self.now() - self.retention, actor=RETENTION_ACTOR)
                )
                if purged:
                    log.info("purged %d decision records past their retention", purged)
            except Exception as exc:
                log.warning("could not purge old decision records: %s", exc)
            await asyncio.sleep(PURGE_INTERVAL)


def decision_report(registry: Registry, request_id: str, tenant: str | None) -> dict[str, Any]:
    """A request's decisions and, per version, how its explanations were made
    (method, reference population, base value); 404 when none is visible."""
    if not _REQUEST_ID.fullmatch(request_id):
        raise Invalid("a request id is 1-64 letters, digits, '.', '_' or '-'")
    found = DecisionStore(registry).find(request_id, tenant)
    if not found:
        raise NotFound(f"no decision recorded for request id {request_id!r}")
    explanations: dict[str, Any] = {}
    tasks: dict[str, str] = {}
    for decision in found:
        ref = f"{decision.model}@{decision.version}"
        if ref not in explanations:
            version = registry.get_version(decision.model, decision.version)
            tasks[ref] = version.signature.task
            profile = version.explanation
            explanations[ref] = (
                None
                if profile is None
                else {
                    "method": profile["method"],
                    "reference": profile["reference"],
                    "base_value": profile["base_value"],
                }
            )
    return {
        "request_id": request_id,
        "decisions": [d.to_json(tasks[f"{d.model}@{d.version}"]) for d in found],
        "explanations": explanations,
    }
