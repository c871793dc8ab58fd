"""The Registry: the only way finmaas reads or writes model metadata.

Every write is one transaction. Writes that touch a model first lock its row
(``SELECT … FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` serialises writers
on SQLite), so concurrent publishers get distinct version numbers and alias
moves are never lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.errors import Conflict, Forbidden, Invalid, NotFound
from finmaas.registry import fields
from finmaas.registry.audit import (
    AuditEntry,
    AuditFilter,
    ChainReport,
    append_entry,
    list_entries,
    verify_chain,
)
from finmaas.registry.database import WRITE, create_engine, database_errors
from finmaas.registry.migrate import ensure_schema
from finmaas.registry.names import check_alias_name, check_model_name, check_tenant
from finmaas.registry.records import (
    DEFAULT_PROTECTED_ALIASES,
    VALIDATION_STATUSES,
    Alias,
    AliasEvent,
    AliasSnapshot,
    Approval,
    Model,
    ModelUpdate,
    ModelVersion,
    MonitoringPolicy,
    NewModel,
    NewVersion,
)
from finmaas.registry.tables import alias_events, aliases, approvals, model_versions, models

Clock = Callable[[], datetime]
Who = str | Actor
"""Who makes a change: an :class:`Actor`, or just a name (a local operator)."""
_RETRIES = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        query = sa.select(models).order_by(models.c.name)
        if not include_archived:
            query = query.where(models.c.status == "active")
        if review_due_on is not None:
            query = query.where(models.c.next_review <= review_due_on)
        with self.read() as conn:
            return [_model(row) for row in conn.execute(query).mappings()]

    def get_model(self, name: str) -> Model:
        with self.read() as conn:
            return _model(self._model_row(conn, name))

    def create_model(
        self, name: str, *, task: str, actor: Who, spec: NewModel | None = None
    ) -> Model:
        check_model_name(name)
        spec = spec or NewModel()
        who = as_actor(actor)
        for attempt in range(_RETRIES):
            try:
                with self.write() as conn:
                    if conn.execute(_model_query(name)).first() is not None:
                        raise Conflict(f"model {name!r} already exists")
                    return _model(self._insert_model(conn, name, task, who, spec))
            except sa.exc.IntegrityError:
                if attempt == _RETRIES - 1:
                    raise Conflict(f"model {name!r} already exists") from None
        raise AssertionError("unreachable")

    def archive_model(self, name: str, *, actor: Who) -> Model:
        """Archive a model, all its versions and remove its aliases (artifacts stay)."""
        now = self._clock()
        who = as_actor(actor)
        self.authorize_change(name, "model.archive", name, actor=who)
        with self.write() as conn:
            row = self._model_row(conn, name, lock=True)
            if row["status"] == "archived":
                raise Conflict(f"model {name!r} is already archived")
            for alias in conn.execute(
                sa.select(aliases).where(aliases.c.model_id == row["id"])
            ).mappings():
                self._record_alias_event(
                    conn, row["id"], alias["name"], "delete", alias["version"], None, who.name
                )
            conn.execute(sa.delete(aliases).where(aliases.c.model_id == row["id"]))
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.model_id == row["id"], model_versions.c.status == "active")
                .values(status="archived", archived_at=now)
            )
            conn.execute(
                sa.update(models)
                .where(models.c.id == row["id"])
                .values(status="archived", updated_at=now)
            )
            self.audit(
                conn,
                who,
                "model.archive",
                name,
                tenant=row["tenant"],
                before={"status": row["status"]},
                after={"status": "archived"},
            )
            return _model(self._model_row(conn, name))

    def update_model(self, name: str, update: ModelUpdate, *, actor: Who) -> Model:
        """Change a model's inventory fields (owner, risk tier, review date, …)."""
        changes = _model_changes(update)
        monitoring = _monitoring_changes(update)
        if not changes and not monitoring:
            raise Invalid("nothing to change: give at least one field")
        who = as_actor(actor)
        self.authorize_change(name, "model.update", name, actor=who)
        with self.write() as conn:
            row = self._model_row(conn, name, lock=True)
            if monitoring:
                policy = MonitoringPolicy.from_json(row["monitoring"]).to_json()
                changes["monitoring"] = _check_monitoring({**policy, **monitoring})
            before = {key: _jsonable(row[key]) for key in changes}
            conn.execute(
                sa.update(models)
                .where(models.c.id == row["id"])
                .values(**changes, updated_at=self._clock())
            )
            after = {key: _jsonable(value) for key, value in changes.items()}
            self.audit(
                conn, who, "model.update", name, tenant=row["tenant"], before=before, after=after
            )
            return _model(self._model_row(conn, name))

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
        values = self._version_values(new, who.name)
        with contextlib.suppress(NotFound):  # a new model is created in the spec's tenant
            self.authorize_change(name, "version.publish", name, actor=who)
        for attempt in range(_RETRIES):
            try:
                with self.write() as conn:
                    row = conn.execute(_model_query(name, lock=True)).mappings().first()
                    if row is None:
                        row = self._insert_model(
                            conn, name, new.signature.task, who, model_spec or NewModel()
                        )
                    elif not who.acts_for(row["tenant"]):  # created since the check above
                        raise Forbidden(f"model {name!r} belongs to another tenant")
                    self._check_publishable(conn, row, new)
                    number = conn.execute(
                        sa.update(models)
                        .where(models.c.id == row["id"])
                        .values(
                            latest_version=models.c.latest_version + 1,
                            updated_at=values["created_at"],
                        )
                        .returning(models.c.latest_version)
                    ).scalar_one()
                    conn.execute(
                        sa.insert(model_versions).values(
                            model_id=row["id"], version=number, **values
                        )
                    )
                    self.audit(
                        conn,
                        who,
                        "version.publish",
                        f"{name}@{number}",
                        tenant=row["tenant"],
                        after={
                            "digest": new.artifact_digest,
                            "format": new.artifact_format,
                            "parent_version": new.parent_version,
                        },
                    )
                    return self._version(conn, row, number)
            except sa.exc.IntegrityError:
                # A concurrent first push created the model; the retry sees it.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _version_values(self, new: NewVersion, actor: str) -> dict[str, Any]:
        if len(new.artifact_digest) != 64 or not all(
            c in "0123456789abcdef" for c in new.artifact_digest
        ):
            raise Invalid(
                f"artifact digest must be 64 lowercase hex characters, got {new.artifact_digest!r}"
            )
        if new.parent_version is not None and new.parent_version < 1:
            raise Invalid(f"parent version must be ≥ 1, got {new.parent_version}")
        return {
            "status": "active",
            "artifact_digest": new.artifact_digest,
            "artifact_format": new.artifact_format,
            "artifact_size": new.artifact_size,
            "signature": new.signature.to_dict(),
            "metrics": fields.check_metrics(new.metrics),
            "params": fields.check_json("params", new.params, fields.MAX_PARAMS_BYTES),
            "tags": fields.check_tags(new.tags),
            "parent_version": new.parent_version,
            "lineage": fields.check_json("lineage", new.lineage, fields.MAX_LINEAGE_BYTES),
            "reference_profile": (
                None
                if new.reference_profile is None
                else fields.check_json(
                    "reference profile", new.reference_profile, fields.MAX_PROFILE_BYTES
                )
            ),
            "explanation": (
                None
                if new.explanation is None
                else fields.check_json("explanation", new.explanation, fields.MAX_PROFILE_BYTES)
            ),
            "model_card": fields.check_text("model card", new.model_card, fields.MAX_MODEL_CARD),
            "created_by": fields.check_text("actor", actor, fields.MAX_ACTOR, one_line=True),
            "created_at": self._clock(),
        }

    def _check_publishable(self, conn: Connection, model: RowMapping, new: NewVersion) -> None:
        name = model["name"]
        if model["status"] == "archived":
            raise Conflict(f"model {name!r} is archived; it takes no new versions")
        if model["task"] != new.signature.task:
            raise Invalid(
                f"model {name!r} is a {model['task']} model "
                f"but the signature says {new.signature.task}"
            )
        if new.parent_version is not None and new.parent_version > model["latest_version"]:
            raise NotFound(f"model {name!r} has no version {new.parent_version} to be the parent")

    def get_version(self, name: str, ref: int | str) -> ModelVersion:
        """Resolve ``ref`` (a version number, its digits, or an alias name) to a version."""
        with self.read() as conn:
            model = self._model_row(conn, name)
            return self._version(conn, model, self._resolve(conn, model, ref))

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        with self.read() as conn:
            model = self._model_row(conn, name)
            query = (
                sa.select(model_versions)
                .where(model_versions.c.model_id == model["id"])
                .order_by(model_versions.c.version)
            )
            if not include_archived:
                query = query.where(model_versions.c.status == "active")
            by_version = self._aliases_by_version(conn, model["id"])
            return [
                _version(name, row, by_version.get(row["version"], ()))
                for row in conn.execute(query).mappings()
            ]

    def archive_version(self, name: str, version: int, *, actor: Who) -> ModelVersion:
        who = as_actor(actor)
        self.authorize_change(name, "version.archive", f"{name}@{version}", actor=who)
        with self.write() as conn:
            model = self._model_row(conn, name, lock=True)
            current = self._version(conn, model, version)
            if current.status == "archived":
                raise Conflict(f"version {version} of model {name!r} is already archived")
            if current.aliases:
                raise Conflict(
                    f"version {version} of model {name!r} is the target of alias "
                    f"{current.aliases[0]!r}; move or delete the alias first"
                )
            conn.execute(
                sa.update(model_versions)
                .where(
                    model_versions.c.model_id == model["id"], model_versions.c.version == version
                )
                .values(status="archived", archived_at=self._clock())
            )
            self.audit(
                conn,
                who,
                "version.archive",
                f"{name}@{version}",
                tenant=model["tenant"],
                before={"status": "active"},
                after={"status": "archived"},
            )
            return self._version(conn, model, version)

    def versions_using_artifact(self, digest: str) -> list[ModelVersion]:
        query = (
            sa.select(model_versions, models.c.name)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.artifact_digest == digest)
        )
        with self.read() as conn:
            return [_version(row["name"], row, ()) for row in conn.execute(query).mappings()]

    def purgeable_artifacts(self) -> list[str]:
        """Digests whose every version is archived and whose file was not purged yet."""
        active = sa.select(model_versions.c.artifact_digest).where(
            model_versions.c.status == "active"
        )
        query = (
            sa.select(model_versions.c.artifact_digest)
            .where(
                model_versions.c.status == "archived",
                model_versions.c.artifact_purged_at.is_(None),
                model_versions.c.artifact_digest.not_in(active),
            )
            .distinct()
            .order_by(model_versions.c.artifact_digest)
        )
        with self.read() as conn:
            return list(conn.execute(query).scalars())

    def mark_artifact_purged(self, digest: str, *, actor: Who = "local") -> bool:
        """Record that ``digest``'s file may be deleted; False if an active version uses it."""
        who = as_actor(actor)
        with self.write() as conn:
            in_use = conn.execute(
                sa.select(sa.func.count()).where(
                    model_versions.c.artifact_digest == digest,
                    model_versions.c.status == "active",
                )
            ).scalar_one()
            if in_use:
                return False
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.artifact_digest == digest)
                .values(artifact_purged_at=self._clock())
            )
            owners = set(
                conn.execute(
                    sa.select(models.c.tenant)
                    .join(model_versions, models.c.id == model_versions.c.model_id)
                    .where(model_versions.c.artifact_digest == digest)
                ).scalars()
            )
            # The file belongs to its versions' tenant; one shared by several tenants'
            # versions (the same bytes pushed twice) is the operator's housekeeping.
            tenant = owners.pop() if len(owners) == 1 else who.tenant
            self.audit(conn, who, "artifact.purge", digest, tenant=tenant)
            return True

    # -- aliases --------------------------------------------------------------

    def list_aliases(self, name: str) -> list[Alias]:
        with self.read() as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                sa.select(aliases).where(aliases.c.model_id == model["id"]).order_by(aliases.c.name)
            ).mappings()
            return [_alias(name, row) for row in rows]

    def set_alias(self, name: str, alias: str, version: int, *, actor: Who) -> Alias:
        """Point ``alias`` at ``version`` (promote); recorded for rollback.

        A protected alias needs the version approved (four-eyes, see the class).
        """
        check_alias_name(alias)
        who = as_actor(actor)
        self.authorize_change(name, "alias.set", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            model = self._model_row(conn, name, lock=True)
            target = self._version(conn, model, version)
            if target.status == "archived":
                raise Conflict(
                    f"version {version} of model {name!r} is archived; "
                    f"alias {alias!r} cannot point to it"
                )
            current = self._alias_version(conn, model["id"], alias)
            if current == version:
                raise Conflict(
                    f"alias {alias!r} of model {name!r} already points to version {version}"
                )
            self._check_four_eyes(conn, model, alias, target)
            return self._move_alias(conn, model, alias, current, version, "set", who)

    def rollback_alias(self, name: str, alias: str, *, actor: Who) -> Alias:
        """Move ``alias`` back to the version it pointed to before its last move.

        Rolling a protected alias back needs no new approval when the target
        was approved before.
        """
        check_alias_name(alias)
        who = as_actor(actor)
        self.authorize_change(name, "alias.rollback", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            model = self._model_row(conn, name, lock=True)
            current = self._alias_version(conn, model["id"], alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            stack = self._alias_stack(conn, model["id"], alias)
            if len(stack) < 2:
                raise Conflict(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to"
                )
            target = stack[-2]
            version = self._version(conn, model, target)
            if version.status == "archived":
                raise Conflict(
                    f"cannot roll back alias {alias!r} of model {name!r} to version {target}: "
                    "it is archived"
                )
            self._check_four_eyes(conn, model, alias, version)
            return self._move_alias(conn, model, alias, current, target, "rollback", who)

    def delete_alias(self, name: str, alias: str, *, actor: Who) -> None:
        who = as_actor(actor)
        self.authorize_change(name, "alias.delete", f"{name}:{alias}", actor=who)
        with self.write() as conn:
            model = self._model_row(conn, name, lock=True)
            current = self._alias_version(conn, model["id"], alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(
                sa.delete(aliases).where(aliases.c.model_id == model["id"], aliases.c.name == alias)
            )
            self._record_alias_event(conn, model["id"], alias, "delete", current, None, who.name)
            self.audit(
                conn,
                who,
                "alias.delete",
                f"{name}:{alias}",
                tenant=model["tenant"],
                before={"version": current},
            )

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
        if decision not in ("approved", "rejected"):
            raise Invalid(f"decision must be 'approved' or 'rejected', got {decision!r}")
        who = as_actor(actor)
        if who.role not in ("validator", "admin"):
            raise Forbidden(f"this needs the role validator; {who.name}'s role is {who.role}")
        action = "version.approve" if decision == "approved" else "version.reject"
        self.authorize_change(name, action, f"{name}@{version}", actor=who)
        note = fields.check_text("note", note.strip())
        if not note:
            raise Invalid("a note is required: say what was reviewed and why")
        with self.write() as conn:
            model = self._model_row(conn, name, lock=True)
            target = self._version(conn, model, version)
            if target.status == "archived":
                raise Conflict(f"version {version} of model {name!r} is archived")
            if (
                decision == "approved"
                and target.created_by == who.name
                and not self.single_approver
            ):
                raise Forbidden(
                    f"four-eyes rule: {who.name} registered version {version} of model "
                    f"{name!r} and may not approve it; another validator must"
                )
            at = self._clock()
            conn.execute(
                sa.insert(approvals).values(
                    model_id=model["id"],
                    version=version,
                    decision=decision,
                    note=note,
                    actor=who.name,
                    at=at,
                    tenant=who.tenant,
                    role=who.role,
                )
            )
            conn.execute(
                sa.update(models)
                .where(models.c.id == model["id"])
                .values(validation_status=decision, updated_at=at)
            )
            self.audit(
                conn,
                who,
                action,
                f"{name}@{version}",
                tenant=model["tenant"],
                before={"validation_status": model["validation_status"]},
                after={"validation_status": decision, "note": note},
            )
            return Approval(
                name,
                version,
                decision,  # type: ignore[arg-type]
                note,
                who.name,
                at,
                tenant=who.tenant,
                role=who.role,
            )

    def list_approvals(self, name: str, version: int | None = None) -> list[Approval]:
        with self.read() as conn:
            model = self._model_row(conn, name)
            query = (
                sa.select(approvals)
                .where(approvals.c.model_id == model["id"])
                .order_by(approvals.c.id)
            )
            if version is not None:
                query = query.where(approvals.c.version == version)
            return [
                Approval(
                    name,
                    row["version"],
                    row["decision"],
                    row["note"],
                    row["actor"],
                    _utc(row["at"]),
                    tenant=row["tenant"],
                    role=row["role"],
                )
                for row in conn.execute(query).mappings()
            ]

    def _check_four_eyes(
        self, conn: Connection, model: RowMapping, alias: str, target: ModelVersion
    ) -> None:
        protected = model["protected_aliases"]
        if alias not in (DEFAULT_PROTECTED_ALIASES if protected is None else protected):
            return
        # Only decisions of the model's tenant's validators and of admins count; an
        # approval whose validator is unknown (empty tenant and role) counts for nothing.
        counts = sa.or_(approvals.c.role == "admin", approvals.c.tenant == model["tenant"])
        latest = (
            conn.execute(
                sa.select(approvals.c.decision, approvals.c.actor)
                .where(
                    approvals.c.model_id == model["id"],
                    approvals.c.version == target.version,
                    counts,
                )
                .order_by(approvals.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        independent = latest is not None and (
            self.single_approver or latest["actor"] != target.created_by
        )
        if latest is None or latest["decision"] != "approved" or not independent:
            raise Forbidden(
                f"alias {alias!r} of model {model['name']!r} is protected: version "
                f"{target.version} needs an approval by a validator of tenant "
                f"{model['tenant']!r} or an admin, other than its author "
                f"({target.created_by}); run `finmaas models approve {model['name']} "
                f"{target.version} --note …`"
            )

    def alias_snapshot(self) -> AliasSnapshot:
        """Every active model and where each of its aliases points, in one read.

        The serving path caches this and refreshes it in the background, so a
        moved alias reaches every worker within the refresh interval.
        """
        with self.read() as conn:
            names = conn.execute(
                sa.select(models.c.name).where(models.c.status == "active")
            ).scalars()
            pointers = conn.execute(
                sa.select(models.c.name, aliases.c.name, aliases.c.version)
                .join(models, models.c.id == aliases.c.model_id)
                .where(models.c.status == "active")
            )
            return AliasSnapshot(
                models=frozenset(names),
                aliases={(model, alias): version for model, alias, version in pointers},
            )

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        with self.read() as conn:
            model = self._model_row(conn, name)
            query = (
                sa.select(alias_events)
                .where(alias_events.c.model_id == model["id"])
                .order_by(alias_events.c.id)
            )
            if alias is not None:
                query = query.where(alias_events.c.alias == alias)
            return [
                AliasEvent(
                    model=name,
                    alias=row["alias"],
                    action=row["action"],
                    from_version=row["from_version"],
                    to_version=row["to_version"],
                    actor=row["actor"],
                    at=_utc(row["at"]),
                )
                for row in conn.execute(query).mappings()
            ]

    # -- internals ------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> RowMapping:
        row = conn.execute(_model_query(name, lock=lock)).mappings().first()
        if row is None:
            raise NotFound(f"model {name!r} not found")
        return row

    def _insert_model(
        self, conn: Connection, name: str, task: str, actor: Actor, spec: NewModel
    ) -> RowMapping:
        now = self._clock()
        if spec.risk_tier is not None and spec.risk_tier not in (1, 2, 3):
            raise Invalid(f"risk tier must be 1, 2 or 3, got {spec.risk_tier}")
        conn.execute(
            sa.insert(models).values(
                name=name,
                description=fields.check_text("description", spec.description),
                owner=fields.check_text("owner", spec.owner, fields.MAX_ACTOR, one_line=True),
                task=task,
                tags=fields.check_tags(spec.tags),
                status="active",
                latest_version=0,
                created_by=fields.check_text("actor", actor.name, fields.MAX_ACTOR, one_line=True),
                created_at=now,
                updated_at=now,
                tenant=check_tenant(spec.tenant),
                risk_tier=spec.risk_tier,
                intended_use=fields.check_text("intended use", spec.intended_use),
                validation_status="draft",
                next_review=spec.next_review,
            )
        )
        self.audit(
            conn,
            actor,
            "model.create",
            name,
            tenant=spec.tenant,
            after={"task": task, "tenant": spec.tenant, "owner": spec.owner},
        )
        return self._model_row(conn, name)

    def _resolve(self, conn: Connection, model: RowMapping, ref: int | str) -> int:
        if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
            return int(ref)
        version = self._alias_version(conn, model["id"], ref)
        if version is None:
            raise NotFound(f"model {model['name']!r} has no alias {ref!r}")
        return version

    def _version(self, conn: Connection, model: RowMapping, version: int) -> ModelVersion:
        row = (
            conn.execute(
                sa.select(model_versions).where(
                    model_versions.c.model_id == model["id"], model_versions.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"model {model['name']!r} has no version {version}")
        tags = self._aliases_by_version(conn, model["id"]).get(version, ())
        return _version(model["name"], row, tags)

    def _aliases_by_version(self, conn: Connection, model_id: int) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        rows = conn.execute(
            sa.select(aliases.c.name, aliases.c.version)
            .where(aliases.c.model_id == model_id)
            .order_by(aliases.c.name)
        )
        for alias_name, version in rows:
            out.setdefault(version, []).append(alias_name)
        return {version: tuple(names) for version, names in out.items()}

    def _alias_version(self, conn: Connection, model_id: int, alias: str) -> int | None:
        value = conn.execute(
            sa.select(aliases.c.version).where(
                aliases.c.model_id == model_id, aliases.c.name == alias
            )
        ).scalar_one_or_none()
        return None if value is None else int(value)

    def _alias_stack(self, conn: Connection, model_id: int, alias: str) -> list[int]:
        """Versions the alias went through, undone moves removed; the last is current."""
        stack: list[int] = []
        rows = conn.execute(
            sa.select(alias_events.c.action, alias_events.c.to_version)
            .where(alias_events.c.model_id == model_id, alias_events.c.alias == alias)
            .order_by(alias_events.c.id)
        )
        for action, to_version in rows:
            if action == "set":
                stack.append(to_version)
            elif action == "rollback":
                stack.pop()
            else:
                stack.clear()
        return stack

    def _move_alias(
        self,
        conn: Connection,
        model: RowMapping,
        alias: str,
        current: int | None,
        version: int,
        action: str,
        who: Actor,
    ) -> Alias:
        now = self._clock()
        actor = who.name
        if current is None:
            conn.execute(
                sa.insert(aliases).values(
                    model_id=model["id"],
                    name=alias,
                    version=version,
                    updated_by=actor,
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                sa.update(aliases)
                .where(aliases.c.model_id == model["id"], aliases.c.name == alias)
                .values(version=version, updated_by=actor, updated_at=now)
            )
        self._record_alias_event(conn, model["id"], alias, action, current, version, actor)
        self.audit(
            conn,
            who,
            f"alias.{action}",
            f"{model['name']}:{alias}",
            tenant=model["tenant"],
            before={"version": current},
            after={"version": version},
        )
        return Alias(
            model=model["name"], name=alias, version=version, updated_by=actor, updated_at=now
        )

    def _record_alias_event(
        self,
        conn: Connection,
        model_id: int,
        alias: str,
        action: str,
        from_version: int | None,
        to_version: int | None,
        actor: str,
    ) -> None:
        conn.execute(
            sa.insert(alias_events).values(
                model_id=model_id,
                alias=alias,
                action=action,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                at=self._clock(),
            )
        )

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


def _model_changes(update: ModelUpdate) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if update.description is not None:
        changes["description"] = fields.check_text("description", update.description)
    if update.owner is not None:
        changes["owner"] = fields.check_text("owner", update.owner, fields.MAX_ACTOR, one_line=True)
    if update.risk_tier is not None:
        if update.risk_tier not in (1, 2, 3):
            raise Invalid(f"risk tier must be 1, 2 or 3, got {update.risk_tier}")
        changes["risk_tier"] = update.risk_tier
    if update.intended_use is not None:
        changes["intended_use"] = fields.check_text("intended use", update.intended_use)
    if update.validation_status is not None:
        if update.validation_status not in VALIDATION_STATUSES:
            raise Invalid(
                f"validation status must be one of {', '.join(VALIDATION_STATUSES)}, "
                f"got {update.validation_status!r}"
            )
        changes["validation_status"] = update.validation_status
    if update.next_review is not None:
        changes["next_review"] = update.next_review
    if update.protected_aliases is not None:
        # production is always protected; a model may protect more aliases.
        changes["protected_aliases"] = sorted(
            {*DEFAULT_PROTECTED_ALIASES, *(check_alias_name(a) for a in update.protected_aliases)}
        )
    if update.max_concurrency is not None:
        if not 0 <= update.max_concurrency <= 1_000_000:
            raise Invalid(
                f"max concurrency must be between 0 (no cap) and 1000000, "
                f"got {update.max_concurrency}"
            )
        changes["max_concurrency"] = update.max_concurrency or None
    return changes


def _monitoring_changes(update: ModelUpdate) -> dict[str, Any]:
    return {
        key: value
        for key in ("drift_watch", "drift_alert", "log_sample_rate", "decisions")
        if (value := getattr(update, key)) is not None
    }


def _check_monitoring(policy: dict[str, Any]) -> dict[str, Any]:
    watch, alert = policy["drift_watch"], policy["drift_alert"]
    if not 0 < watch < alert <= 10:
        raise Invalid(
            f"drift bands need 0 < watch < alert ≤ 10, got watch {watch} and alert {alert}"
        )
    if not 0 <= policy["log_sample_rate"] <= 1:
        raise Invalid(f"log sample rate must be between 0 and 1, got {policy['log_sample_rate']}")
    return MonitoringPolicy(**policy).to_json()


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _model_query(name: str, *, lock: bool = False) -> sa.Select[Any]:
    query = sa.select(models).where(models.c.name == name)
    return query.with_for_update() if lock else query


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _model(row: RowMapping) -> Model:
    return Model(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner=row["owner"],
        task=row["task"],
        tags=dict(row["tags"] or {}),
        status=row["status"],
        latest_version=row["latest_version"],
        created_by=row["created_by"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        tenant=row["tenant"],
        risk_tier=row["risk_tier"],
        intended_use=row["intended_use"],
        validation_status=row["validation_status"],
        next_review=row["next_review"],
        protected_aliases=(
            DEFAULT_PROTECTED_ALIASES
            if row["protected_aliases"] is None
            else tuple(row["protected_aliases"])
        ),
        max_concurrency=row["max_concurrency"],
        monitoring=MonitoringPolicy.from_json(row["monitoring"]),
    )


def _version(name: str, row: RowMapping, alias_names: Sequence[str]) -> ModelVersion:
    return ModelVersion(
        model=name,
        version=row["version"],
        status=row["status"],
        artifact_digest=row["artifact_digest"],
        artifact_format=row["artifact_format"],
        artifact_size=row["artifact_size"],
        signature_json=dict(row["signature"]),
        metrics=dict(row["metrics"] or {}),
        params=dict(row["params"] or {}),
        tags=dict(row["tags"] or {}),
        parent_version=row["parent_version"],
        lineage=dict(row["lineage"] or {}),
        reference_profile=row["reference_profile"],
        explanation=row["explanation"],
        model_card=row["model_card"],
        created_by=row["created_by"],
        created_at=_utc(row["created_at"]),
        archived_at=_utc(row["archived_at"]) if row["archived_at"] is not None else None,
        artifact_purged_at=(
            _utc(row["artifact_purged_at"]) if row["artifact_purged_at"] is not None else None
        ),
        aliases=tuple(alias_names),
    )


def _alias(name: str, row: RowMapping) -> Alias:
    return Alias(
        model=name,
        name=row["name"],
        version=row["version"],
        updated_by=row["updated_by"],
        updated_at=_utc(row["updated_at"]),
    )
