"""Control-plane routes under ``/api``: keys, model inventory and promotion, usage, audit.

Every route names the roles it admits (function-level authorisation) and
scopes what it returns to the caller's tenant unless the caller is an admin
(object-level authorisation). A grant lets a key of another tenant read a
model's metadata; only an admin or a key of the model's tenant may change or
approve it, and a change refused to a key of another tenant is audited in the
model's tenant (:mod:`finmaas.api.changes`). Registry calls run in a worker
thread. Bodies are JSON objects whose unknown fields are refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from finmaas.api.bodies import (
    JOB,
    PUBLISH,
    UploadRoute,
    form_document,
    model_change,
    roles_before_body,
    upload_route,
)
from finmaas.api.changes import ChangeGate, ModelChange
from finmaas.config import Settings
from finmaas.errors import Forbidden, Invalid, NotFound
from finmaas.jobs.runner import TEMPLATES, UPLOADS, Job, JobStore, launch, reap
from finmaas.monitoring.decision_records import decision_report
from finmaas.monitoring.report import drift_report, thresholds_of, window_dates
from finmaas.monitoring.store import DriftStore
from finmaas.publish.publishing import publish_bytes, publish_file
from finmaas.registry import ArtifactStore, NewModel, Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.key_store import KeyRecord, KeyStore
from finmaas.registry.names import check_alias_name
from finmaas.registry.records import Model, ModelVersion
from finmaas.registry.usage import UsageStore, usage_csv, usage_report
from finmaas.runtimes import ModelFormat
from finmaas.runtimes.base import SAFE_FORMATS
from finmaas.schema import signature_from_dict
from finmaas.security.guard import Guard
from finmaas.security.key_secrets import issue_key, rotate_key
from finmaas.security.policy import Principal, check_grants, require_role
from finmaas.web.http import (
    Request,
    Response,
    UnsupportedMediaType,
    json_response,
    parse_json,
    require_json,
)
from finmaas.web.uploads import UploadedFile, UploadRequest

T = TypeVar("T")
PUBLISH_FIELDS = frozenset(
    {
        "artifact",
        "filename",
        "format",
        "signature",
        "metrics",
        "params",
        "tags",
        "parent_version",
        "model_card",
        "description",
        "owner",
        "reference",
        "explain_reference",
        "reason_codes",
    }
)
JOB_FIELDS = frozenset({"template", "data", "filename", "options"})
MAX_REFERENCE_ROWS = 100_000
MARKDOWN = b"text/markdown; charset=utf-8"
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
    }
)


class ControlPlane:
    def __init__(
        self, registry: Registry, guard: Guard, store: ArtifactStore, settings: Settings
    ) -> None:
        self.registry = registry
        self.guard = guard
        self.store = store
        self.settings = settings
        self.jobs = JobStore(registry)
        self.keys = KeyStore(registry)
        self.usage = UsageStore(registry)
        self.drift = DriftStore(registry)
        self.changes = ChangeGate(registry, guard)

    async def __call__(self, request: Request, principal: Principal) -> Response:
        method = request.method
        parts = request.path.strip("/").split("/")[1:]
        if parts == ["whoami"] and method == "GET":
            return json_response(_whoami(principal))
        if parts[:1] == ["keys"]:
            return await self._keys(request, principal, parts[1:])
        if parts[:1] == ["models"]:
            return await self._models(request, principal, parts[1:])
        if parts[:1] == ["jobs"]:
            return await self._jobs(request, principal, parts[1:])
        if parts == ["usage"] and method == "GET":
            return await self.usage_report(request, principal)
        if parts == ["audit"] and method == "GET":
            return await self.audit_list(request, principal)
        if len(parts) == 2 and parts[0] == "decisions" and method == "GET":
            require_role(principal, "auditor")
            tenant = None if principal.is_admin else principal.tenant
            return json_response(
                await _thread(lambda: decision_report(self.registry, parts[1], tenant))
            )
        if parts == ["audit", "verify"] and method == "GET":
            require_role(principal, "auditor")
            report = await _thread(self.registry.verify_audit)
            return json_response(
                {"ok": report.ok, "checked": report.checked, "problem": report.problem or None}
            )
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def admit_body(self, method: str, path: str, principal: Principal) -> UploadRoute | None:
        """What is checked before the body is read: the role of a route that takes a
        body and, for a publish, that the model is the caller's tenant's (or new).
        Returns the route's upload parts when it takes an upload."""
        parts = path.strip("/").split("/")[1:]
        change = model_change(method, parts)
        if change is not None:
            await self.changes.authorize(principal, change)
        else:
            roles = roles_before_body(method, parts)
            if roles:
                require_role(principal, *roles)
        return upload_route(method, parts)

    # -- jobs -------------------------------------------------------------------

    async def _jobs(self, request: Request, principal: Principal, rest: list[str]) -> Response:
        """``POST /api/jobs`` starts a training job (developer); ``GET /api/jobs`` and
        ``GET /api/jobs/{id}`` show the caller's tenant's jobs (all of them to admins)
        to developers, validators and auditors."""
        method = request.method
        tenant = None if principal.is_admin else principal.tenant
        if not rest and method == "POST":
            return await self._start_job(request, principal)
        require_role(principal, "developer", "validator", "auditor")
        if not rest and method == "GET":
            found = await _thread(lambda: self.jobs.recent(tenant))
            return json_response({"jobs": [job.to_json() for job in found]})
        if len(rest) == 1 and method == "GET":
            job = await _thread(lambda: self.jobs.get(rest[0], tenant))
            return json_response(job.to_json())
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def _start_job(self, request: Request, principal: Principal) -> Response:
        """The data file is a ``data`` part beside a ``metadata`` part of the template
        and options, already spooled to disk (or, within the small body limit, base64
        in a JSON body); it is kept under ``<home>/jobs/uploads/`` until the job ends
        (the lineage keeps its sha256)."""
        require_role(principal, "developer")
        upload: UploadedFile | None = None
        if not isinstance(request, UploadRequest):
            body = _upload_body(request, JOB_FIELDS)
            template, options, data, filename = _job_spec(body)
        else:
            body, upload = form_document(request.form, JOB, JOB_FIELDS - {"data"})
            template, options, data, filename = _job_spec(body, upload.filename)
        name = options.get("name")
        if not isinstance(name, str):
            raise Invalid("'options.name' is required: the model to register the versions under")
        await self.changes.authorize(
            principal, ModelChange(name, "job.start", name, "developer", creating=True)
        )
        folder = self.settings.home / UPLOADS / uuid.uuid4().hex
        path = folder / filename

        def start() -> Job:
            folder.mkdir(parents=True, mode=0o700)
            if upload is None:
                path.write_bytes(data)
            else:  # moved (a rename under the same home), not copied
                shutil.move(upload.path, path)
            try:
                job = self.jobs.create(template, {**options, "data": str(path)}, principal.actor)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # refused: keep no copy of the data
                raise
            reap(launch(self.settings, job))
            return job

        job = await _thread(start)
        return json_response(job.to_json(), 201)

    # -- keys -------------------------------------------------------------------

    async def _keys(self, request: Request, principal: Principal, rest: list[str]) -> Response:
        method = request.method
        if not rest and method == "POST":
            require_role(principal, "admin")
            body = _body(request, KEY_FIELDS)
            issued = await _thread(
                lambda: issue_key(self.keys, actor=principal.actor, **_key_spec(body))
            )
            return json_response({"key": issued.record.public(), "secret": issued.token}, 201)
        if not rest and method == "GET":
            require_role(principal, "auditor")
            tenant = None if principal.is_admin else principal.tenant
            query = request.query
            include_revoked = query.get("all") in ("1", "true")
            keys = await _thread(
                lambda: self.keys.list(tenant=tenant, include_revoked=include_revoked)
            )
            return json_response({"keys": [key.public() for key in keys]})
        if len(rest) == 1 and method == "GET":
            require_role(principal, "auditor")
            return json_response(await self._visible_key(principal, rest[0]))
        if len(rest) == 2 and method == "POST" and rest[1] in ("revoke", "rotate"):
            require_role(principal, "admin")
            if rest[1] == "revoke":
                key = await _thread(lambda: self.keys.revoke(rest[0], actor=principal.actor))
                return json_response({"key": key.public()})
            issued = await _thread(lambda: rotate_key(self.keys, rest[0], actor=principal.actor))
            return json_response({"key": issued.record.public(), "secret": issued.token})
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def _visible_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        try:
            key: KeyRecord = await _thread(lambda: self.keys.get(key_id))
        except NotFound:
            key = None  # type: ignore[assignment]
        if key is None or not (principal.is_admin or key.tenant == principal.tenant):
            raise NotFound(f"key {key_id[:40]!r} not found")
        return key.public()

    # -- models -------------------------------------------------------------------

    async def _models(self, request: Request, principal: Principal, rest: list[str]) -> Response:
        method = request.method
        if not rest and method == "GET":
            models = await _thread(self.registry.list_models)
            names = set(self.guard.visible(principal, [m.name for m in models]))
            return json_response({"models": [_model(m) for m in models if m.name in names]})
        if not rest:
            raise NotFound(f"no route for {method} {request.path[:200]}")
        name = rest[0]
        if rest[1:] == ["versions"] and method == "POST":
            return await self._publish(request, principal, name)
        if method != "GET":
            return await self._change(request, principal, name, rest)
        self.guard.authorize(principal, name, "metadata")
        if len(rest) == 1 and method == "GET":
            model = await _thread(lambda: self.registry.get_model(name))
            return json_response(_model(model))
        if rest[1:2] == ["versions"] and rest[3:] == ["drift"] and method == "GET":
            return json_response(await self._drift(request, name, _version_number(rest[2])))
        if rest[1:2] == ["versions"] and rest[3:] == ["explanation"] and method == "GET":
            version = _version_number(rest[2])
            found = await _thread(lambda: self.registry.get_version(name, version))
            return json_response(_explanation(found))
        if rest[1:2] == ["versions"] and rest[3:] == ["card"] and method == "GET":
            version = _version_number(rest[2])
            found = await _thread(lambda: self.registry.get_version(name, version))
            return Response(200, found.model_card.encode(), MARKDOWN)
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def _change(
        self, request: Request, principal: Principal, name: str, rest: list[str]
    ) -> Response:
        """Approve or reject a version (validator), move or roll back an alias (developer)."""
        method = request.method
        if len(rest) == 4 and rest[1] == "versions" and method == "POST":
            decision = {"approve": "approved", "reject": "rejected"}.get(rest[3])
            if decision is None:
                raise NotFound(f"no route for {method} {request.path[:200]}")
            version = _version_number(rest[2])
            await self.changes.authorize(principal, _parsed_change(method, rest))
            return await self._decide(request, principal, name, version, decision)
        if rest[1:2] == ["aliases"] and (
            (len(rest) == 3 and method == "PUT") or (rest[3:] == ["rollback"] and method == "POST")
        ):
            alias = check_alias_name(rest[2])
            await self.changes.authorize(principal, _parsed_change(method, rest))
            return await self._alias(request, principal, name, alias)
        raise NotFound(f"no route for {method} {request.path[:200]}")

    async def _decide(
        self, request: Request, principal: Principal, name: str, version: int, decision: str
    ) -> Response:
        note = _body(request, frozenset({"note"})).get("note", "")
        if not isinstance(note, str):
            raise Invalid("'note' must be text")
        approval = await _thread(
            lambda: self.registry.decide(name, version, decision, note=note, actor=principal.actor)
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

    async def _publish(self, request: Request, principal: Principal, name: str) -> Response:
        """Register a model file as the next version of ``name`` (created in the caller's tenant).

        The file is an ``artifact`` part beside a ``metadata`` part of the fields,
        already spooled to disk (or, within the small body limit, base64 in a JSON
        body); it is checked and loaded like ``finmaas models push`` does, and is never
        a pickle: uploads cannot run code.
        """
        await self.changes.authorize(principal, _publish_change(name))
        upload: UploadedFile | None = None
        if not isinstance(request, UploadRequest):
            body = _upload_body(request, PUBLISH_FIELDS)
            data = _base64_field(body, "artifact", "the model file")
        else:
            body, upload = form_document(request.form, PUBLISH, PUBLISH_FIELDS - {"artifact"})
            data = b""
        spec = _publish_spec(body, upload.filename[:200] if upload is not None else "")
        fields: dict[str, Any] = {
            "actor": principal.actor,
            "allow_pickle": False,
            "lineage": {"produced_by": "POST /api/models/{name}/versions"},
            "model_spec": NewModel(
                description=spec.pop("description"),
                owner=spec.pop("owner"),
                tenant=principal.tenant,
            ),
            **spec,
        }
        if upload is None:
            version: ModelVersion = await _thread(
                lambda: publish_bytes(self.registry, self.store, name, data, **fields)
            )
        else:
            path, limit = upload.path, self.settings.max_artifact_bytes
            version = await _thread(
                lambda: publish_file(
                    self.registry, self.store, name, path, max_bytes=limit, **fields
                )
            )
        if version.version == 1:  # a new model: let this worker see its tenant at once
            await self.guard.refresh()
        return json_response(
            {
                "model": version.model,
                "version": version.version,
                "ref": version.ref,
                "artifact_format": version.artifact_format,
                "artifact_size": version.artifact_size,
                "artifact_digest": version.artifact_digest,
                "created_by": version.created_by,
            },
            201,
        )

    async def _drift(self, request: Request, name: str, number: int) -> dict[str, Any]:
        query = request.query
        unknown = set(query) - {"window", "since", "until"}
        if unknown:
            raise Invalid(f"unknown query parameter {sorted(unknown)[0][:64]!r}")
        since, until = window_dates(
            query.get("window"),
            _date(query, "since"),
            _date(query, "until"),
            self.registry.now().date(),
        )
        version = await _thread(lambda: self.registry.get_version(name, number))
        model = await _thread(lambda: self.registry.get_model(name))
        stored = await _thread(lambda: self.drift.window(name, number, since, until))
        return drift_report(
            version, stored, since=since, until=until, thresholds=thresholds_of(model)
        )

    async def _alias(
        self, request: Request, principal: Principal, name: str, alias: str
    ) -> Response:
        """``PUT …/aliases/{alias}`` moves it, ``POST …/aliases/{alias}/rollback`` rolls it back."""
        if not principal.is_admin:
            model = await _thread(lambda: self.registry.get_model(name))
            if alias in model.protected_aliases:
                raise Forbidden(
                    f"alias {alias!r} of model {name!r} is protected; only an admin may move it"
                )
        if request.method == "PUT":
            raw = _body(request, frozenset({"version"})).get("version")
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 2**31:
                raise Invalid("'version' must be a whole number from 1 to 2147483647")
            moved = await _thread(
                lambda: self.registry.set_alias(name, alias, raw, actor=principal.actor)
            )
        else:
            moved = await _thread(
                lambda: self.registry.rollback_alias(name, alias, actor=principal.actor)
            )
        return json_response({"model": name, "alias": alias, "version": moved.version})

    # -- usage and audit --------------------------------------------------------

    async def usage_report(self, request: Request, principal: Principal) -> Response:
        query = request.query
        unknown = set(query) - {"since", "until", "model", "key", "format"}
        if unknown:
            raise Invalid(f"unknown query parameter {sorted(unknown)[0]!r}")
        tenant = None if principal.is_admin else principal.tenant
        key_id = query.get("key")
        if principal.role not in ("admin", "auditor"):
            key_id = principal.key.id  # everyone else sees only their own key
        rows = await _thread(
            lambda: self.usage.query(
                tenant=tenant,
                key_id=key_id,
                model=query.get("model"),
                since=_date(query, "since"),
                until=_date(query, "until"),
            )
        )
        if query.get("format") == "csv":
            return Response(200, usage_csv(rows).encode(), b"text/csv; charset=utf-8")
        return json_response(usage_report(rows))

    async def audit_list(self, request: Request, principal: Principal) -> Response:
        require_role(principal, "auditor")
        query = request.query
        unknown = set(query) - {"actor", "action", "target", "since", "until", "limit"}
        if unknown:
            raise Invalid(f"unknown query parameter {sorted(unknown)[0]!r}")
        limit = query.get("limit", "100")
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 10_000:
            raise Invalid("'limit' must be a whole number from 1 to 10000")
        since, until = _date(query, "since"), _date(query, "until")
        where = AuditFilter(
            actor=query.get("actor"),
            action=query.get("action"),
            target=query.get("target"),
            tenant=None if principal.is_admin else principal.tenant,
            since=datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None,
            until=datetime(until.year, until.month, until.day, tzinfo=UTC) if until else None,
            limit=int(limit),
        )
        entries = await _thread(lambda: self.registry.audit_entries(where))
        return json_response(
            {"entries": [{**entry.__dict__, "at": entry.at.isoformat()} for entry in entries]}
        )


def _parsed_change(method: str, rest: list[str]) -> ModelChange:
    """The change of a model route whose version or alias has been checked already."""
    change = model_change(method, ["models", *rest])
    assert change is not None
    return change


def _publish_change(name: str) -> ModelChange:
    return _parsed_change("POST", [name, "versions"])


async def _thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    require_json(request)
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(f"unknown field {unknown[0][:64]!r}; allowed: {', '.join(sorted(allowed))}")
    return body


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
    for field in ("requests_per_minute", "rows_per_minute", "monthly_quota"):
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


def _upload_body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """An upload route's JSON body (the older form, within the small body limit)."""
    try:
        return _body(request, allowed)
    except UnsupportedMediaType:
        shown = (request.header(b"content-type") or b"").decode("latin-1")[:100]
        raise UnsupportedMediaType(
            f"content type {shown!r} is not supported; send multipart/form-data "
            "(a 'metadata' JSON part and the file) or application/json"
        ) from None


def _base64_field(body: dict[str, Any], name: str, what: str) -> bytes:
    """A required file sent base64-encoded in the JSON body."""
    encoded = body.get(name)
    if not isinstance(encoded, str) or not encoded:
        raise Invalid(f"{name!r} is required: {what}, base64-encoded")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{name!r} is not valid base64") from None


def _publish_spec(body: dict[str, Any], filename: str = "") -> dict[str, Any]:
    """Check a publish body's fields (the file aside; ``filename``: the upload's name
    for it, the default of the field); the registry checks their contents."""
    if "signature" not in body:
        raise Invalid("'signature' is required: the model's inputs and task")
    fmt = body.get("format")
    formats = [f.value for f in SAFE_FORMATS]
    if fmt is not None and fmt not in formats:
        raise Invalid(f"'format' must be one of {', '.join(formats)}")
    spec: dict[str, Any] = {
        "signature": signature_from_dict(body["signature"]),
        "fmt": ModelFormat(fmt) if fmt is not None else None,
    }
    for field in ("filename", "model_card", "description", "owner"):
        value = body.get(field, (filename or "upload") if field == "filename" else "")
        if not isinstance(value, str):
            raise Invalid(f"'{field}' must be text")
        spec[field] = value
    if len(spec["filename"]) > 200:
        raise Invalid("'filename' must be at most 200 characters")
    for field in ("metrics", "params", "tags"):
        value = body.get(field, {})
        if not isinstance(value, dict):
            raise Invalid(f"'{field}' must be an object")
        spec[field] = value
    parent = body.get("parent_version")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
        raise Invalid("'parent_version' must be a version number")
    spec["parent_version"] = parent
    reference = body.get("reference")
    if reference is not None:
        if (
            not isinstance(reference, list)
            or not 0 < len(reference) <= MAX_REFERENCE_ROWS
            or not all(isinstance(row, dict) for row in reference)
        ):
            raise Invalid(
                f"'reference' must be a list of 1 to {MAX_REFERENCE_ROWS} records (raw inputs)"
            )
        import pandas as pd  # here, not at the top: a server worker starts without pandas

        spec["reference_sample"] = pd.DataFrame.from_records(reference)
    explain_reference = body.get("explain_reference", "sample")
    if not isinstance(explain_reference, str):
        raise Invalid("'explain_reference' must be 'sample' or 'cutoff'")
    spec["explanation_reference"] = explain_reference
    codes = body.get("reason_codes")
    if codes is not None and not isinstance(codes, dict):
        raise Invalid("'reason_codes' must be an object of input name → reason text")
    spec["reason_codes"] = codes
    return spec


def _job_spec(
    body: dict[str, Any], uploaded_name: str | None = None
) -> tuple[str, dict[str, Any], bytes, str]:
    """A job body's template, options, data bytes and a safe file name for them;
    ``uploaded_name``: the file came as a part, under that name (no bytes in the body)."""
    template = body.get("template")
    if template not in TEMPLATES:
        raise Invalid(f"'template' must be one of {', '.join(TEMPLATES)}")
    data = b""
    if uploaded_name is None:
        data = _base64_field(body, "data", "the CSV or Parquet file")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise Invalid("'options' must be an object of the template's options")
    if "data" in options:
        raise Invalid("'options.data' is not allowed: the file travels in 'data'")
    default = uploaded_name if uploaded_name and _FILENAME.fullmatch(uploaded_name) else "data"
    filename = body.get("filename", default)
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        raise Invalid("'filename' must be 1-100 letters, digits, '.', '_' or '-'")
    return str(template), options, data, filename


_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _date(query: dict[str, str], name: str) -> date | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"'{name}' must be a date (YYYY-MM-DD)") from None


def _version_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise Invalid(f"version must be a positive integer, got {text[:40]!r}")
    return int(text)


def _explanation(version: ModelVersion) -> dict[str, Any]:
    """The global view of a version's explanations: inputs by mean |contribution|."""
    profile = version.explanation
    if profile is None or profile.get("method") is None:
        raise NotFound(f"{version.ref} has no explanation profile")
    importance = sorted(profile["global_importance"].items(), key=lambda item: -item[1])
    return {
        "model": version.model,
        "version": version.version,
        "method": profile["method"],
        "reference": profile["reference"],
        "reference_rows": profile["reference_rows"],
        "base_value": profile["base_value"],
        "global_importance": [
            {"feature": feature, "mean_abs_contribution": value} for feature, value in importance
        ],
        "reason_texts": profile["reason_texts"],
    }


def _whoami(principal: Principal) -> dict[str, Any]:
    key = principal.key
    return {"key_id": key.id, "name": key.name, "role": key.role, "tenant": key.tenant}


def _model(model: Model) -> dict[str, Any]:
    return {
        "name": model.name,
        "task": model.task,
        "description": model.description,
        "owner": model.owner,
        "tenant": model.tenant,
        "risk_tier": model.risk_tier,
        "intended_use": model.intended_use,
        "validation_status": model.validation_status,
        "next_review": model.next_review.isoformat() if model.next_review else None,
        "protected_aliases": list(model.protected_aliases),
        "max_concurrency": model.max_concurrency,
        "monitoring": model.monitoring.to_json(),
        "latest_version": model.latest_version,
        "status": model.status,
    }
