"""The control plane over a server's ``/api``, with a key, through :class:`finmaas.Client`.

Each call is one ``/api`` request; its JSON answer is turned back into the record
the local registry would have returned, so a command prints the same either way.
The key is only ever in the client's ``Authorization`` header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from finmaas.client import Client
from finmaas.errors import NotSupported
from finmaas.jobs.runner import Job
from finmaas.registry.audit import AuditEntry, AuditFilter, ChainReport
from finmaas.registry.key_store import Grant, KeyRecord
from finmaas.registry.records import Approval, Model, ModelVersion, MonitoringPolicy
from finmaas.registry.usage import UsageRow
from finmaas.schema.llm_endpoint import EndpointSpec
from finmaas.security.key_secrets import IssuedKey

_PUBLISH_FIELDS = {
    "signature",
    "fmt",
    "allow_pickle",
    "metrics",
    "params",
    "tags",
    "parent_version",
    "lineage",
    "reference_sample",
    "reference_labels",
    "reference_target",
    "model_card",
    "model_spec",
    "explanation_reference",
    "reason_codes",
}
"""The fields of a local publish that a publish over ``/api`` carries (``lineage`` is
the server's own: it names the route)."""


class RemoteControl:
    """:class:`~finmaas.cli.control.ControlPlane` over ``client`` (a server and a key)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._aliases: dict[str, dict[str, int]] = {}
        self._role: str | None = None

    def command(self, *words: str) -> str:
        return " ".join(("finmaas", "--server", self.client.url, *words))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def list_models(
        self, *, include_archived: bool = False, review_due_on: date | None = None
    ) -> list[Model]:
        listed = self.client.list_models(include_archived=include_archived)
        for entry in listed:
            self._aliases[entry["name"]] = dict(entry["aliases"])
        models = [model_from_json(entry) for entry in listed]
        if review_due_on is not None:
            models = [m for m in models if m.next_review and m.next_review <= review_due_on]
        return models

    def aliases(self, name: str) -> dict[str, int]:
        if name not in self._aliases:
            self._aliases[name] = dict(self.client.model(name)["aliases"])
        return self._aliases[name]

    def get_model(self, name: str) -> Model:
        found = self.client.model(name)
        self._aliases[name] = dict(found["aliases"])
        return model_from_json(found)

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [version_from_json(v) for v in self.client.versions(name)]

    def get_version(self, name: str, ref: int | str) -> ModelVersion:
        return version_from_json(self.client.version(name, ref))

    def publish(self, name: str, file: Path, **fields: Any) -> ModelVersion:
        unsent = sorted(set(fields) - _PUBLISH_FIELDS)
        if unsent:
            option = unsent[0].replace("_", "-")
            raise NotSupported(f"--{option} cannot be sent to a server yet; push it locally")
        if fields.get("allow_pickle"):
            raise NotSupported("--allow-pickle is refused over --server: uploads never run code")
        sample = fields.get("reference_sample")
        labels = fields.get("reference_labels")
        target = fields.get("reference_target") or "target"
        spec = fields.get("model_spec")
        fmt = fields.get("fmt")
        published = self.client.publish(
            name,
            file,
            fields["signature"],
            metrics=fields.get("metrics"),
            params=fields.get("params"),
            tags=fields.get("tags"),
            parent_version=fields.get("parent_version"),
            description=spec.description if spec is not None else "",
            owner=spec.owner if spec is not None else "",
            fmt=fmt.value if fmt is not None else None,
            model_card=fields.get("model_card", ""),
            reference=None if sample is None else _records(_labelled(sample, fields)),
            reference_target=None if labels is None else target,
            explain_reference=fields.get("explanation_reference", "sample"),
            reason_codes=fields.get("reason_codes"),
        )
        return self.get_version(name, int(published["version"]))

    def publish_endpoint(
        self, name: str, spec: EndpointSpec, *, check: bool, **fields: Any
    ) -> ModelVersion:
        model_spec = fields.get("model_spec")
        published = self.client.publish_endpoint(
            name,
            spec.url,
            spec.upstream_model,
            credential=spec.credential,
            price_prompt=None if spec.price_prompt is None else str(spec.price_prompt),
            price_completion=(
                None if spec.price_completion is None else str(spec.price_completion)
            ),
            context_length=spec.context_length,
            params=spec.params,
            check=check,
            metrics=fields.get("metrics"),
            tags=fields.get("tags"),
            parent_version=fields.get("parent_version"),
            model_card=fields.get("model_card", ""),
            description=model_spec.description if model_spec is not None else "",
            owner=model_spec.owner if model_spec is not None else "",
        )
        return self.get_version(name, int(published["version"]))

    def decide(self, name: str, version: int, decision: str, note: str) -> Approval:
        if decision == "approved":
            answer = self.client.approve(name, version, note=note)
        else:
            answer = self.client.reject(name, version, note=note)
        return Approval(
            name, version, answer["decision"], note, answer["actor"], _time(answer["at"])
        )

    def after_approval(self, name: str, version: int) -> str:
        promote = self.command("models", "promote", name, str(version))
        if self._whoami_role() == "admin":
            return f"promote it with: {promote}"
        return (
            f"next: an admin promotes it with their own key: {promote} (over the API only an "
            "admin moves a protected alias such as production)"
        )

    def set_alias(
        self, name: str, alias: str, version: int, *, accept_signature_change: bool = False
    ) -> int:
        answer = self.client.promote(
            name, alias, version, accept_signature_change=accept_signature_change
        )
        return int(answer["version"])

    def rollback_alias(self, name: str, alias: str) -> int:
        return int(self.client.rollback(name, alias)["version"])

    def issue_key(self, **spec: Any) -> IssuedKey:
        body = dict(spec)
        body["grants"] = [{"models": g.models, "verbs": list(g.verbs)} for g in spec["grants"]]
        expires = spec.get("expires_at")
        body["expires_at"] = None if expires is None else expires.isoformat()
        issued = self.client.create_key(body.pop("name"), body.pop("role"), **body)
        return IssuedKey(key_from_json(issued["key"]), issued["secret"])

    def list_keys(self, *, tenant: str | None, include_revoked: bool) -> list[KeyRecord]:
        keys = [key_from_json(k) for k in self.client.keys(include_revoked=include_revoked)]
        return [k for k in keys if tenant is None or k.tenant == tenant]

    def get_key(self, key_id: str) -> KeyRecord:
        return key_from_json(self.client.key(key_id))

    def revoke_key(self, key_id: str) -> KeyRecord:
        return key_from_json(self.client.revoke_key(key_id))

    def rotate_key(self, key_id: str) -> IssuedKey:
        issued = self.client.rotate_key(key_id)
        return IssuedKey(key_from_json(issued["key"]), issued["secret"])

    def audit_entries(self, where: AuditFilter) -> list[AuditEntry]:
        if where.tenant is not None:
            raise NotSupported(
                "--tenant is not available with --server: the server shows the entries "
                "your key's tenant may see (every tenant's for an admin key)"
            )
        filters = {"limit": str(where.limit)}
        for field in ("actor", "action", "target"):
            value = getattr(where, field)
            if value is not None:
                filters[field] = value
        for field in ("since", "until"):
            value = getattr(where, field)
            if value is not None:
                filters[field] = value.date().isoformat()
        return [entry_from_json(e) for e in self.client.audit(**filters)]

    def verify_audit(self) -> ChainReport:
        report = self.client.verify_audit()
        return ChainReport(report["ok"], report["checked"], report["problem"] or "")

    def decision_report(self, request_id: str) -> dict[str, Any]:
        return self.client.decisions(request_id)

    def usage(
        self,
        *,
        tenant: str | None,
        key_id: str | None,
        model: str | None,
        since: date | None,
        until: date | None,
    ) -> list[UsageRow]:
        filters = {"key": key_id, "model": model, "since": since, "until": until}
        sent = {k: str(v) for k, v in filters.items() if v is not None}
        rows = [usage_from_json(row) for row in self.client.usage(**sent)["usage"]]
        return [row for row in rows if tenant is None or row.tenant == tenant]

    def drift(self, version: ModelVersion, since: date, until: date) -> dict[str, Any]:
        return self.client.drift(version.model, version.version, since=since, until=until)

    def start_job(self, template: str, options: Mapping[str, Any]) -> Job:
        sent = dict(options)
        data = Path(sent.pop("data"))
        return job_from_json(self.client.train(template, data, **sent))

    def recent_jobs(self) -> list[Job]:
        return [job_from_json(job) for job in self.client.jobs()]

    def get_job(self, job_id: str) -> Job:
        return job_from_json(self.client.job(job_id))

    def close(self) -> None:
        self.client.close()

    def _whoami_role(self) -> str:
        if self._role is None:
            self._role = str(self.client.whoami()["role"])
        return self._role


def model_from_json(data: Mapping[str, Any]) -> Model:
    review = data.get("next_review")
    return Model(
        id=data["id"],
        name=data["name"],
        description=data["description"],
        owner=data["owner"],
        task=data["task"],
        tags=dict(data["tags"]),
        status=data["status"],
        latest_version=data["latest_version"],
        created_by=data["created_by"],
        created_at=_time(data["created_at"]),
        updated_at=_time(data["updated_at"]),
        tenant=data["tenant"],
        risk_tier=data["risk_tier"],
        intended_use=data["intended_use"],
        validation_status=data["validation_status"],
        next_review=date.fromisoformat(review) if review else None,
        protected_aliases=tuple(data["protected_aliases"]),
        max_concurrency=data["max_concurrency"],
        monitoring=MonitoringPolicy.from_json(data["monitoring"]),
    )


def version_from_json(data: Mapping[str, Any]) -> ModelVersion:
    fields = {k: v for k, v in data.items() if k != "ref"}
    for name in ("created_at", "archived_at", "artifact_purged_at"):
        fields[name] = _time(fields[name]) if fields[name] else None
    fields["aliases"] = tuple(fields["aliases"])
    return ModelVersion(**fields)


def key_from_json(data: Mapping[str, Any]) -> KeyRecord:
    fields = dict(data)
    fields["grants"] = tuple(Grant(g["models"], tuple(g["verbs"])) for g in data["grants"])
    for name in ("expires_at", "created_at", "revoked_at", "last_used_at"):
        fields[name] = _time(fields[name]) if fields[name] else None
    return KeyRecord(secret_hash="", **fields)


def entry_from_json(data: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(**{**data, "at": _time(data["at"])})


def usage_from_json(data: Mapping[str, Any]) -> UsageRow:
    return UsageRow(**{**data, "day": date.fromisoformat(data["day"])})


def job_from_json(data: Mapping[str, Any]) -> Job:
    fields = dict(data)
    for name in ("created_at", "started_at", "finished_at"):
        fields[name] = _time(fields[name]) if fields[name] else None
    return Job(**fields)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _records(sample: Any) -> list[dict[str, Any]]:
    """A reference sample (a DataFrame) as JSON records, a missing value as null."""
    records: list[dict[str, Any]] = sample.to_dict(orient="records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in records
    ]


def _labelled(sample: Any, fields: Mapping[str, Any]) -> Any:
    """The reference sample with its labels put back as the target column, for the server
    to split again (``reference_target``)."""
    labels = fields.get("reference_labels")
    if labels is None:
        return sample
    return sample.assign(**{fields.get("reference_target") or "target": list(labels)})
