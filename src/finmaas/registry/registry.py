"""The Registry: the only way finmaas reads or writes model metadata.

This module is the facade: it opens the database, runs every call in one
transaction, checks who may change a model, and writes the audit trail. The
work inside a transaction is done by the part for each noun:

- :mod:`~finmaas.registry.models`: models (create, update, archive);
- :mod:`~finmaas.registry.versions`: versions (publish, read, archive) and artifact purges;
- :mod:`~finmaas.registry.aliases`: aliases (set, roll back, delete) and their history;
- :mod:`~finmaas.registry.approvals`: approvals and the four-eyes rule;
- :mod:`~finmaas.registry.lookups` and :mod:`~finmaas.registry.rows`: the reads
  they share and the mapping of rows to records.

Every write is one transaction. Writes that touch a model first lock its row
(``SELECT … FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` serialises writers
on SQLite), so concurrent publishers get distinct version numbers and alias
moves are never lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.errors import Conflict, Forbidden, NotFound
from finmaas.registry import aliases, approvals, models, versions
from finmaas.registry.audit import (
    AuditEntry,
    AuditFilter,
    ChainReport,
    append_entry,
    list_entries,
    verify_chain,
)
from finmaas.registry.clock import Clock, utcnow
from finmaas.registry.database import WRITE, create_engine, database_errors
from finmaas.registry.migrate import ensure_schema
from finmaas.registry.names import check_alias_name, check_model_name
from finmaas.registry.records import (
    Alias,
    AliasEvent,
    AliasSnapshot,
    Approval,
    Model,
    ModelUpdate,
    ModelVersion,
    NewModel,
    NewVersion,
)

Who = str | Actor
"""Who makes a change: an :class:`Actor`, or just a name (a local operator)."""
_RETRIES = 3


class Registry:
    """Metadata of models, versions and aliases.

    Build it with :meth:`open` (which creates the schema in a fresh database)
    or hand it an engine whose schema is current. Every write appends an entry
    to the audit trail in its own transaction, in the tenant that owns what
    changed.

    Tenants: only an admin or an actor of a model's tenant may change the model,
    its versions and aliases, or approve them (:meth:`authorize_change`); a
    refusal is audited in the model's tenant.

    Four-eyes: pointing a protected alias (``production`` unless the model says
    otherwise) at a version needs that version's approval by someone other
    than its author; ``single_approver=True`` relaxes that to any approval.
    Only decisions of the model's tenant's validators and of admins count.
    """

    def __init__(
        self, engine: Engine, *, clock: Clock = utcnow, single_approver: bool = False
    ) -> None:
        self.engine = engine
        self._clock = clock
        self.single_approver = single_approver

    @classmethod
    def open(cls, settings: Settings) -> Registry:
        engine = create_engine(
            settings.resolved_database_url,
            busy_timeout=settings.db_busy_timeout,
            connect_timeout=settings.db_connect_timeout,
        )
        ensure_schema(engine)
        return cls(engine, single_approver=settings.single_approver)

    def now(self) -> datetime:
        return self._clock()

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions ---------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with database_errors(self.engine), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        with (
            database_errors(self.engine),
            self.engine.connect().execution_options(**{WRITE: True}) as conn,
            conn.begin(),
        ):
            yield conn

    # -- models ---------------------------------------------------------------

    def list_models(
        self, *, include_archived: bool = False, review_due_on: date | None = None
    ) -> list[Model]:
        """Models by name; with ``review_due_on``, only those whose review is due by then."""
        with self.read() as conn:
            return models.list_models(
                conn, include_archived=include_archived, review_due_on=review_due_on
            )

    def get_model(self, name: str) -> Model:
        with self.read() as conn:
            return models.get_model(conn, name)

    def create_model(
        self, name: str, *, task: str, actor: Who, spec: NewModel | None = None
    ) -> Model:
        check_model_name(name)
        spec = spec or NewModel()
        who = as_actor(actor)
        for attempt in range(_RETRIES):
            try:
                with self.write() as conn:
                    return models.create_model(conn, name, task, who, spec, clock=self._clock)
            except sa.exc.IntegrityError:
                if attempt == _RETRIES - 1:
                    raise Conflict(f"model {name!r} already exists") from None
        raise AssertionError("unreachable")

    def archive_model(self, name: str, *, actor: Who) -> Model:
        """Archive a model, all its versions and remove its aliases (artifacts stay)."""
        who = as_actor(actor)
        self.authorize_change(name, "model.archive", name, actor=who)
        with self.write() as conn:
            return models.archive_model(conn, name, who, clock=self._clock)

    def update_model(self, name: str, update: ModelUpdate, *, actor: Who) -> Model:
        """Change a model's inventory fields (owner, risk tier, review date, …)."""
        changes, monitoring = models.requested_changes(update)
        who = as_actor(actor)
        self.authorize_change(name, "model.update", name, actor=who)
        with self.write() as conn:
            return models.update_model(conn, name, changes, monitoring, who, clock=self._clock)

    # -- versions -------------------------------------------------------------

    def publish_version(
        self,
        name: str,
        new: NewVersion,
        *,
        actor: Who,
        model_spec: NewModel | None = None,
    ) -> ModelVersion:
        """Record a new immutable version; create the model on its first version.

        The artifact must already be in the artifact store.
        """
        check_model_name(name)
        who = as_actor(actor)
        values = versions.version_values(new, who.name, clock=self._clock)
        with contextlib.suppress(NotFound):  # a new model is created in the spec's tenant
            self.authorize_change(name, "version.publish", name, actor=who)
        for attempt in range(_RETRIES):
            try:
                with self.write() as conn:
                    return versions.publish_version(
                        conn, name, new, values, who, model_spec or NewModel(), clock=self._clock
                    )
            except sa.exc.IntegrityError:
                # A concurrent first push created the model; the retry sees it.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def get_version(self, name: str, ref: int | str) -> ModelVersion:
        """Resolve ``ref`` (a version number, its digits, or an alias name) to a version."""
        with self.read() as conn:
            return versions.get_version(conn, name, ref)

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        with self.read() as conn:
            return versions.list_versions(conn, name, include_archived=include_archived)

    def servable_versions(self, name: str | None = None) -> dict[str, list[int]]:
        """Version numbers that may be served (not archived), of every active model or
        of ``name``, in one read; a model without any is left out."""
        with self.read() as conn:
            return versions.servable_versions(conn, name)

    def archive_version(self, name: str, version: int, *, actor: Who) -> ModelVersion:
        who = as_actor(actor)
        self.authorize_change(name, "version.archive", f"{name}@{version}", actor=who)
        with self.write() as conn:
            return versions.archive_version(conn, name, version, who, clock=self._clock)

    def versions_using_artifact(self, digest: str) -> list[ModelVersion]:
        with self.read() as conn:
            return versions.versions_using_artifact(conn, digest)

    def purgeable_artifacts(self) -> list[str]:
        """Digests whose every version is archived and whose file was not purged yet."""
        with self.read() as conn:
            return versions.purgeable_artifacts(conn)

    def mark_artifact_purged(self, digest: str, *, actor: Who) -> bool:
        """Record that ``digest``'s file may be deleted; False if an active version uses it."""
        who = as_actor(actor)
        with self.write() as conn:
            return versions.mark_artifact_purged(conn, digest, who, clock=self._clock)

    # -- aliases --------------------------------------------------------------

    def list_aliases(self, name: str) -> list[Alias]:
        with self.read() as conn:
            return aliases.list_aliases(conn, name)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: Who,
        accept_signature_change: bool = False,
    ) -> Alias:
        """Point ``alias`` at ``version`` (promote); recorded for rollback.

        A protected alias needs the version approved (four-eyes, see the class).
        A version whose task, classes or positive class differ from the alias's
        current version needs ``accept_signature_change`` (recorded in the audit).
        """
        check_alias_name(alias)
        who = as_actor(actor)
        self.authorize_change(name, "alias.set", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            return aliases.set_alias(
                conn,
                name,
                alias,
                version,
                who,
                clock=self._clock,
                single_approver=self.single_approver,
                accept_signature_change=accept_signature_change,
            )

    def rollback_alias(self, name: str, alias: str, *, actor: Who) -> Alias:
        """Move ``alias`` back to the version it pointed to before its last move.

        Rolling a protected alias back needs no new approval when the target
        was approved before.
        """
        check_alias_name(alias)
        who = as_actor(actor)
        self.authorize_change(name, "alias.rollback", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            return aliases.rollback_alias(
                conn, name, alias, who, clock=self._clock, single_approver=self.single_approver
            )

    def delete_alias(self, name: str, alias: str, *, actor: Who) -> None:
        who = as_actor(actor)
        self.authorize_change(name, "alias.delete", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            aliases.delete_alias(conn, name, alias, who, clock=self._clock)

    def alias_snapshot(self) -> AliasSnapshot:
        """Every active model and where each of its aliases points, in one read.

        The serving path caches this and refreshes it in the background, so a
        moved alias reaches every worker within the refresh interval.
        """
        with self.read() as conn:
            return aliases.alias_snapshot(conn)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        with self.read() as conn:
            return aliases.alias_history(conn, name, alias)

    # -- approvals (four-eyes) -------------------------------------------------

    def decide(
        self,
        name: str,
        version: int,
        decision: str,
        *,
        note: str,
        actor: Who,
    ) -> Approval:
        """Record a validator's approval or rejection of a version.

        Only a validator of the model's tenant or an admin may decide; a refusal
        for another tenant is audited in the model's tenant (``version.approve.refused``,
        ``version.reject.refused``). The author of a version may not approve it
        (unless the deployment runs with ``single_approver``); any other validator
        may reject. The model's validation status follows the latest outcome.
        """
        who = as_actor(actor)
        action = approvals.check_decision(decision, who)
        self.authorize_change(name, action, f"{name}@{version}", actor=who)
        note = approvals.check_note(note)
        with self.write() as conn:
            return approvals.decide(
                conn,
                name,
                version,
                decision,
                note,
                who,
                clock=self._clock,
                single_approver=self.single_approver,
            )

    def list_approvals(self, name: str, version: int | None = None) -> list[Approval]:
        with self.read() as conn:
            return approvals.list_approvals(conn, name, version)

    # -- audit and authorisation ----------------------------------------------

    def audit(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        target: str,
        *,
        tenant: str,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Append an audit entry inside ``conn``'s write transaction.

        ``tenant`` owns ``target`` (a key's tenant; a model's for its versions,
        aliases and approvals); its auditors read the entry, whoever ``actor`` is.
        """
        append_entry(
            conn, actor, action, target, tenant=tenant, before=before, after=after, at=self._clock()
        )

    def record_event(
        self, actor: Who, action: str, target: str, *, tenant: str, after: Any = None
    ) -> None:
        """Audit something that changes no table (a server started with relaxed settings)."""
        with self.write() as conn:
            self.audit(conn, as_actor(actor), action, target, tenant=tenant, after=after)

    def authorize_change(self, name: str, action: str, target: str, *, actor: Who) -> Model:
        """The model ``name``, when ``actor`` may change it (see :meth:`Actor.acts_for`).

        Otherwise one ``<action>.refused`` entry is appended in the model's
        tenant, so its auditors see the attempt, and :class:`Forbidden` is raised
        with the same message every entry point gives.
        """
        who = as_actor(actor)
        model = self.get_model(name)
        if who.acts_for(model.tenant):
            return model
        reason = f"model {name!r} belongs to another tenant"
        self.record_refusal(who, action, target, tenant=model.tenant, reason=reason)
        raise Forbidden(reason)

    def record_refusal(
        self, actor: Who, action: str, target: str, *, tenant: str, reason: str
    ) -> None:
        """Audit a refused change as ``<action>.refused`` in ``tenant`` (the object's owner).

        The entry carries what the caller was told and the actor's own tenant and
        role, since the entry's tenant is the object's. One entry per refused
        request, of bounded size: a refusal costs no more than the request did.
        """
        who = as_actor(actor)
        after = {"refused": reason[:300], "actor_tenant": who.tenant, "actor_role": who.role}
        self.record_event(who, f"{action}.refused", target, tenant=tenant, after=after)

    def audit_entries(self, where: AuditFilter | None = None) -> list[AuditEntry]:
        with self.read() as conn:
            return list_entries(conn, where or AuditFilter())

    def verify_audit(self) -> ChainReport:
        with self.read() as conn:
            return verify_chain(conn)


def as_actor(who: Who) -> Actor:
    """An :class:`Actor` for ``who``; a bare name is a local operator."""
    return who if isinstance(who, Actor) else Actor(name=who, origin="local")
