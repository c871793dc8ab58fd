"""The control plane over the local database, acting as the local admin (``local:<user>``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.jobs.runner import Job, JobStore, launch, reap
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.registry.audit import AuditEntry, AuditFilter, ChainReport
from finmaas.registry.key_store import KeyRecord, KeyStore
from finmaas.registry.records import Approval, Model, ModelVersion
from finmaas.registry.usage import UsageRow, UsageStore
from finmaas.schema.llm_endpoint import EndpointSpec
from finmaas.security.key_secrets import IssuedKey, issue_key, rotate_key


class LocalControl:
    """:class:`~finmaas.cli.control.ControlPlane` over ``registry`` as ``actor``."""

    def __init__(
        self, registry: Registry, store: LocalArtifactStore, settings: Settings, actor: Actor
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings
        self.actor = actor

    def command(self, *words: str) -> str:
        return " ".join(("finmaas", *words))

    def now(self) -> datetime:
        return self.registry.now()

    def list_models(
        self, *, include_archived: bool = False, review_due_on: date | None = None
    ) -> list[Model]:
        return self.registry.list_models(
            include_archived=include_archived, review_due_on=review_due_on
        )

    def aliases(self, name: str) -> dict[str, int]:
        return {a.name: a.version for a in self.registry.list_aliases(name)}

    def get_model(self, name: str) -> Model:
        return self.registry.get_model(name)

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.registry.list_versions(name)

    def get_version(self, name: str, ref: int | str) -> ModelVersion:
        return self.registry.get_version(name, ref)

    def publish(self, name: str, file: Path, **fields: Any) -> ModelVersion:
        from finmaas.publish.publishing import publish_file  # loads the runtimes

        limit = self.settings.max_artifact_bytes
        return publish_file(
            self.registry, self.store, name, file, actor=self.actor, max_bytes=limit, **fields
        )

    def publish_endpoint(
        self, name: str, spec: EndpointSpec, *, check: bool, **fields: Any
    ) -> ModelVersion:
        from finmaas.publish.llm_endpoints import publish_endpoint  # httpx

        lineage = {"produced_by": "finmaas models push --endpoint"}
        return publish_endpoint(
            self.registry,
            self.store,
            name,
            spec,
            actor=self.actor,
            check=check,
            lineage=lineage,
            **fields,
        )

    def decide(self, name: str, version: int, decision: str, note: str) -> Approval:
        return self.registry.decide(name, version, decision, note=note, actor=self.actor)

    def after_approval(self, name: str, version: int) -> str:
        return f"promote it with: {self.command('models', 'promote', name, str(version))}"

    def set_alias(
        self, name: str, alias: str, version: int, *, accept_signature_change: bool = False
    ) -> int:
        return self.registry.set_alias(
            name,
            alias,
            version,
            actor=self.actor,
            accept_signature_change=accept_signature_change,
        ).version

    def rollback_alias(self, name: str, alias: str) -> int:
        return self.registry.rollback_alias(name, alias, actor=self.actor).version

    def issue_key(self, **spec: Any) -> IssuedKey:
        return issue_key(KeyStore(self.registry), actor=self.actor, **spec)

    def list_keys(self, *, tenant: str | None, include_revoked: bool) -> list[KeyRecord]:
        return KeyStore(self.registry).list(tenant=tenant, include_revoked=include_revoked)

    def get_key(self, key_id: str) -> KeyRecord:
        return KeyStore(self.registry).get(key_id)

    def revoke_key(self, key_id: str) -> KeyRecord:
        return KeyStore(self.registry).revoke(key_id, actor=self.actor)

    def rotate_key(self, key_id: str) -> IssuedKey:
        return rotate_key(KeyStore(self.registry), key_id, actor=self.actor)

    def audit_entries(self, where: AuditFilter) -> list[AuditEntry]:
        return self.registry.audit_entries(where)

    def verify_audit(self) -> ChainReport:
        return self.registry.verify_audit()

    def decision_report(self, request_id: str) -> dict[str, Any]:
        from finmaas.monitoring.decision_records import decision_report

        return decision_report(self.registry, request_id, None)

    def usage(
        self,
        *,
        tenant: str | None,
        key_id: str | None,
        model: str | None,
        since: date | None,
        until: date | None,
    ) -> list[UsageRow]:
        return UsageStore(self.registry).query(
            tenant=tenant, key_id=key_id, model=model, since=since, until=until
        )

    def drift(self, version: ModelVersion, since: date, until: date) -> dict[str, Any]:
        from finmaas.monitoring.report import drift_report, thresholds_of
        from finmaas.monitoring.store import DriftStore

        stored = DriftStore(self.registry).window(version.model, version.version, since, until)
        thresholds = thresholds_of(self.registry.get_model(version.model))
        return drift_report(
            version,
            stored,
            since=since,
            until=until,
            min_rows=self.settings.drift_min_rows,
            thresholds=thresholds,
        )

    def start_job(self, template: str, options: Mapping[str, Any]) -> Job:
        job = JobStore(self.registry).create(template, dict(options), self.actor)
        reap(launch(self.settings, job))
        return job

    def recent_jobs(self) -> list[Job]:
        return JobStore(self.registry).recent()

    def get_job(self, job_id: str) -> Job:
        return JobStore(self.registry).get(job_id)

    def close(self) -> None:
        """Nothing: the registry is the CLI context's, which closes it."""
