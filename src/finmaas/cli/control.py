"""The one seam between the CLI's control-plane commands and where they act.

:class:`ControlPlane` is what a command asks of the registry, whoever answers: a
:class:`~finmaas.cli.control_local.LocalControl` over the local database as the
local admin, or, with ``--server URL`` (``FINMAAS_SERVER``), a
:class:`~finmaas.cli.control_remote.RemoteControl` that sends each call to the
server's ``/api`` with the key of ``FINMAAS_API_KEY`` (or ``--api-key``), through
:class:`finmaas.Client`. :class:`~finmaas.cli.context.CliContext` picks one; a
command never asks which.

A command with no ``/api`` route (``serve``, ``db``, ``quickstart``, ``models
update``, …) is refused against a server before it runs (:func:`check_runs_here`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from finmaas.errors import NotSupported

if TYPE_CHECKING:
    from finmaas.jobs.runner import Job
    from finmaas.registry.audit import AuditEntry, AuditFilter, ChainReport
    from finmaas.registry.key_store import KeyRecord
    from finmaas.registry.records import Approval, Model, ModelVersion
    from finmaas.registry.usage import UsageRow
    from finmaas.schema.llm_endpoint import EndpointSpec
    from finmaas.security.key_secrets import IssuedKey

REMOTE_COMMANDS = frozenset(
    {
        "models list",
        "models show",
        "models card",
        "models push",
        "models promote",
        "models rollback",
        "models approve",
        "models reject",
        "models diff",
        "keys create",
        "keys list",
        "keys show",
        "keys revoke",
        "keys rotate",
        "audit list",
        "audit verify",
        "decisions show",
        "usage",
        "drift",
        "jobs list",
        "jobs show",
        "jobs attach",
        "train credit",
        "train forecast",
        "train sentiment",
        "optimize",
        "convert",
    }
)
"""The commands that also run against ``--server``: each maps to ``/api`` routes."""


class ControlPlane(Protocol):
    """What the control-plane commands ask, answered by the local registry or a server.

    Records come back as the registry's own (``Model``, ``ModelVersion``,
    ``KeyRecord``, …), so a command prints the same thing wherever they came from.
    """

    def command(self, *words: str) -> str:
        """The command line that runs ``words`` here: ``finmaas models approve m 1``, or
        with ``--server URL`` in it against a server (for next-step hints)."""
        ...

    def now(self) -> datetime: ...

    def list_models(
        self, *, include_archived: bool = False, review_due_on: date | None = None
    ) -> list[Model]: ...

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version of model ``name``."""
        ...

    def get_model(self, name: str) -> Model: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def get_version(self, name: str, ref: int | str) -> ModelVersion: ...

    def publish(self, name: str, file: Path, **fields: Any) -> ModelVersion:
        """Publish ``file`` as the next version of ``name``; ``fields``: the keyword
        arguments of :func:`finmaas.publish.publishing.publish_file` but the stores,
        the actor and the size limit."""
        ...

    def publish_endpoint(
        self, name: str, spec: EndpointSpec, *, check: bool, **fields: Any
    ) -> ModelVersion:
        """Register ``spec`` as the next (``llm``) version of ``name``, after checking the
        upstream unless ``check`` is false; ``fields``: ``metrics``, ``tags``,
        ``parent_version``, ``model_card``, ``model_spec``. Locally the credential is
        resolved here; against a server, on the server."""
        ...

    def decide(self, name: str, version: int, decision: str, note: str) -> Approval: ...

    def after_approval(self, name: str, version: int) -> str:
        """The next step once ``name@version`` is approved, for the one who approved it."""
        ...

    def set_alias(
        self, name: str, alias: str, version: int, *, accept_signature_change: bool = False
    ) -> int:
        """Point ``alias`` at ``version``; returns the version it now points at. A version
        whose task, classes or positive class differ from the alias's current one needs
        ``accept_signature_change``."""
        ...

    def rollback_alias(self, name: str, alias: str) -> int:
        """Point ``alias`` back; returns the version it now points at."""
        ...

    def issue_key(self, **spec: Any) -> IssuedKey: ...

    def list_keys(self, *, tenant: str | None, include_revoked: bool) -> list[KeyRecord]: ...

    def get_key(self, key_id: str) -> KeyRecord: ...

    def revoke_key(self, key_id: str) -> KeyRecord: ...

    def rotate_key(self, key_id: str) -> IssuedKey: ...

    def audit_entries(self, where: AuditFilter) -> list[AuditEntry]: ...

    def verify_audit(self) -> ChainReport: ...

    def decision_report(self, request_id: str) -> dict[str, Any]: ...

    def usage(
        self,
        *,
        tenant: str | None,
        key_id: str | None,
        model: str | None,
        since: date | None,
        until: date | None,
    ) -> list[UsageRow]: ...

    def drift(self, version: ModelVersion, since: date, until: date) -> dict[str, Any]:
        """The drift report of ``version`` from ``since`` to ``until`` (exclusive)."""
        ...

    def start_job(self, template: str, options: Mapping[str, Any]) -> Job:
        """Start a job; ``options['data']`` is a local file (uploaded to a server)."""
        ...

    def recent_jobs(self) -> list[Job]: ...

    def get_job(self, job_id: str) -> Job: ...

    def close(self) -> None: ...


def check_runs_here(command_path: str, server: str | None) -> None:
    """Refuse a command with no ``/api`` route when the CLI is pointed at a server."""
    if server is None:
        return
    words = command_path.split(" ", 1)
    if len(words) < 2 or words[1] not in REMOTE_COMMANDS:
        raise NotSupported(
            f"'{command_path}' acts on the local database; it cannot run against --server"
        )
