"""The control plane's route table: every ``/api`` route, what it needs, and its handler.

A row names the roles its caller needs (``roles=``; empty: any key) or, for a read
of a model, the verb the key must hold on ``{name}`` (``verb=READ_MODEL``). A route
that changes a model carries the :class:`ChangeRule` its path names; the change gate
then checks the route's roles, after the model's visibility. What a route needs is
read from here both before its body (:meth:`ControlPlane.admit_body`) and before
its handler (:meth:`ControlPlane.__call__`).
"""

from __future__ import annotations

from dataclasses import dataclass

from finmaas.api import audit, jobs, keys, models, promotion, publishing
from finmaas.api.bodies import JOB, PUBLISH, UploadRoute
from finmaas.api.changes import ChangeRule, alias_target, model_target, version_target
from finmaas.api.context import Handler
from finmaas.web.routing import Route, RouteTable

ADMIN = ("admin",)
AUDITOR = ("auditor",)
DEVELOPER = ("developer",)
VALIDATOR = ("validator",)
JOB_READERS = ("developer", "validator", "auditor")
"""The roles that see jobs (any path under ``/api/jobs`` but a start needs one)."""
READ_MODEL = "metadata"
"""The verb a key holds on a model to read it (any GET under ``/api/models/{name}``)."""
MODEL = "/api/models/{name}"
VERSION = "/api/models/{name}/versions/{version}"
ALIAS = "/api/models/{name}/aliases/{alias}"


@dataclass(frozen=True)
class Endpoint:
    """A route's handler, and what its path tells before its body is read."""

    handle: Handler
    change: ChangeRule | None = None
    """The change to model ``{name}`` the path names (its roles are the route's)."""
    upload: UploadRoute | None = None
    """The parts of the upload it takes as ``multipart/form-data``."""


def _route(
    method: str,
    path: str,
    handle: Handler,
    summary: str,
    *,
    roles: tuple[str, ...] = (),
    verb: str = "",
    change: ChangeRule | None = None,
    upload: UploadRoute | None = None,
) -> Route[Endpoint]:
    endpoint = Endpoint(handle, change, upload)
    return Route(method, path, endpoint, roles=roles, verb=verb, summary=summary)


ROUTES: RouteTable[Endpoint] = RouteTable(
    [
        _route("GET", "/api/whoami", keys.whoami, "The caller's key: id, name, role, tenant"),
        # keys
        _route("POST", "/api/keys", keys.create_key, "Issue a key", roles=ADMIN),
        _route("GET", "/api/keys", keys.list_keys, "List keys", roles=AUDITOR),
        _route("GET", "/api/keys/{key_id}", keys.show_key, "Show a key", roles=AUDITOR),
        _route("POST", "/api/keys/{key_id}/revoke", keys.revoke_key, "Revoke a key", roles=ADMIN),
        _route("POST", "/api/keys/{key_id}/rotate", keys.rotate_key, "Rotate a key", roles=ADMIN),
        # models and their versions
        _route("GET", "/api/models", models.list_models, "List the models the key sees"),
        _route("GET", MODEL, models.show_model, "Show a model", verb=READ_MODEL),
        _route(
            "GET",
            f"{MODEL}/versions",
            models.list_versions,
            "List a model's versions",
            verb=READ_MODEL,
        ),
        _route("GET", VERSION, models.show_version, "Show a version", verb=READ_MODEL),
        _route(
            "POST",
            f"{MODEL}/versions",
            publishing.publish_version,
            "Publish a model file as the next version",
            roles=DEVELOPER,
            change=ChangeRule("version.publish", model_target, creating=True),
            upload=PUBLISH,
        ),
        _route(
            "GET",
            f"{VERSION}/drift",
            models.version_drift,
            "A version's drift against its reference",
            verb=READ_MODEL,
        ),
        _route(
            "GET",
            f"{VERSION}/explanation",
            models.version_explanation,
            "A version's explanation profile",
            verb=READ_MODEL,
        ),
        _route("GET", f"{VERSION}/card", models.version_card, "A version's card", verb=READ_MODEL),
        # promotion
        _route(
            "POST",
            f"{VERSION}/approve",
            promotion.approve_version,
            "Approve a version",
            roles=VALIDATOR,
            change=ChangeRule("version.approve", version_target),
        ),
        _route(
            "POST",
            f"{VERSION}/reject",
            promotion.reject_version,
            "Reject a version",
            roles=VALIDATOR,
            change=ChangeRule("version.reject", version_target),
        ),
        _route(
            "PUT",
            ALIAS,
            promotion.set_alias,
            "Point an alias at a version",
            roles=DEVELOPER,
            change=ChangeRule("alias.set", alias_target),
        ),
        _route(
            "POST",
            f"{ALIAS}/rollback",
            promotion.rollback_alias,
            "Roll an alias back",
            roles=DEVELOPER,
            change=ChangeRule("alias.rollback", alias_target),
        ),
        # jobs
        _route(
            "POST",
            "/api/jobs",
            jobs.start_job,
            "Start a training job",
            roles=DEVELOPER,
            upload=JOB,
        ),
        _route("GET", "/api/jobs", jobs.list_jobs, "List jobs", roles=JOB_READERS),
        _route("GET", "/api/jobs/{job_id}", jobs.show_job, "Show a job", roles=JOB_READERS),
        # usage, audit, decisions
        _route("GET", "/api/usage", audit.usage, "Usage by day, key and model"),
        _route("GET", "/api/audit", audit.audit_entries, "Audit entries", roles=AUDITOR),
        _route(
            "GET",
            "/api/audit/verify",
            audit.verify_audit,
            "Verify the audit trail",
            roles=AUDITOR,
        ),
        _route(
            "GET",
            "/api/decisions/{request_id}",
            audit.request_decisions,
            "A request's decisions",
            roles=AUDITOR,
        ),
    ]
)
