"""Training jobs: a template run in its own worker process, watched through the registry.

A job is a row of the ``jobs`` table: its template (``credit``, ``forecast``,
``sentiment``, or ``optimize`` for :mod:`finmaas.optimize`), the run's options,
who asked, and what happened: ``queued`` → ``running`` → ``succeeded`` or
``failed``, the last progress message, a log of the messages, the versions it
registered, and the error. :func:`launch` starts
``python -m finmaas.jobs.worker JOB_ID`` in a new session, so the job
outlives the command or server that started it (detach), and anyone who can
read the registry can watch it (attach).

A worker beats every ``HEARTBEAT_SECONDS``. A running job whose worker is gone
(its process ended on this host, or no heartbeat for ``STALE_SECONDS``) is
marked failed when it is next read, with the reason. Each version is published
atomically, and a run registers its versions only after all its training and
checks succeeded, so a crash leaves no half-registered version: at most the
complete versions registered before it, which the job lists.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    TypeAlias,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.background import process_alive
from finmaas.config import Settings
from finmaas.errors import Invalid, NotFound
from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.registry.tables import jobs
from finmaas.schema import signature_from_dict

if TYPE_CHECKING:
    from finmaas.optimize.runs import OptimizeRun
    from finmaas.training.forecast_runs import ForecastRun
    from finmaas.training.runs import CreditRun
    from finmaas.training.sentiment_runs import SentimentRun

# The templates (scikit-learn, LightGBM, ONNX, pandas) are imported when a job is
# created or run, never when a server worker starts (issue 18, item 6).

JobState = Literal["queued", "running", "succeeded", "failed"]
Template = Literal["credit", "forecast", "sentiment", "optimize"]
TEMPLATES: tuple[Template, ...] = ("credit", "forecast", "sentiment", "optimize")
Run: TypeAlias = "CreditRun | ForecastRun | SentimentRun | OptimizeRun"
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
START_SECONDS = 60.0
"""A queued job whose worker has not started after this long has failed."""
MAX_LOG_LINES = 500
MAX_LINE_CHARS = 500
UPLOADS = Path("jobs") / "uploads"
"""Where the server keeps a job's uploaded data (under the home) until the job ends."""
REPORT_SECONDS = 0.5
"""Progress is written at most this often (and always at the end)."""


@dataclass(frozen=True)
class Job:
    id: str
    template: str
    state: JobState
    options: dict[str, Any]
    tenant: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    message: str
    log: list[str]
    versions: list[dict[str, Any]]
    error: str | None

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")

    def to_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "template": self.template,
            "state": self.state,
            "options": self.options,
            "tenant": self.tenant,
            "created_by": self.created_by,
            "created_at": when(self.created_at),
            "started_at": when(self.started_at),
            "finished_at": when(self.finished_at),
            "message": self.message,
            "log": self.log,
            "versions": self.versions,
            "error": self.error,
        }


def build_run(template: str, options: Mapping[str, Any]) -> Run:
    """The run a job's options describe; unknown or ill-typed options are refused."""
    if template not in TEMPLATES:
        raise Invalid(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    run_type = _run_types()[template]
    known = {f.name for f in fields(run_type)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise Invalid(f"unknown option {unknown[0]!r} for the {template} template")
    values = dict(options)
    if "data" not in values:
        raise Invalid("option 'data' (the data file) is required")
    values["data"] = Path(str(values["data"]))
    hints = get_type_hints(run_type)
    for name, value in options.items():
        _check_scalar(name, value, hints[name])
    try:
        if template == "credit":
            for name in ("pii", "drop", "protected", "candidates"):
                if name in values:
                    values[name] = tuple(_strings(values[name], name))
            if values.get("signature") is not None:
                values["signature"] = signature_from_dict(values["signature"])
            if "costs" in values:
                from finmaas.training.metrics import CostMatrix

                values["costs"] = CostMatrix(**_mapping(values["costs"], "costs"))
            if "network" in values:
                from finmaas.training.neural import NetworkSettings

                values["network"] = NetworkSettings(**_mapping(values["network"], "network"))
        if template == "optimize" and "max_metric_drop" in values:
            from finmaas.optimize.report import parse_gate

            values["max_metric_drop"] = parse_gate(
                _mapping(values["max_metric_drop"], "max_metric_drop")
            )
        return run_type(**values)
    except TypeError as exc:
        raise Invalid(f"bad options for the {template} template: {exc}") from None


def _run_types() -> dict[str, type[Run]]:
    from finmaas.optimize.runs import OptimizeRun
    from finmaas.training.forecast_runs import ForecastRun
    from finmaas.training.runs import CreditRun
    from finmaas.training.sentiment_runs import SentimentRun

    return {
        "credit": CreditRun,
        "forecast": ForecastRun,
        "sentiment": SentimentRun,
        "optimize": OptimizeRun,
    }


def _check_scalar(name: str, value: object, hint: Any) -> None:
    """Refuse a plain option of the wrong type (an integer, a number, text, a choice)."""
    allowed = set(get_args(hint)) if get_origin(hint) in (Union, UnionType) else {hint}
    if value is None and type(None) in allowed:
        return
    for kind in allowed:
        if get_origin(kind) is Literal:
            if value not in get_args(kind):
                choices = ", ".join(map(str, get_args(kind)))
                raise Invalid(f"option {name!r} must be one of {choices}, got {value!r}")
            return
    checks: dict[type, tuple[str, Callable[[object], bool]]] = {
        int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
        float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
        str: ("text", lambda v: isinstance(v, str)),
    }
    for kind, (what, ok) in checks.items():
        if kind in allowed and not ok(value):
            raise Invalid(f"option {name!r} must be {what}, got {value!r}")


def _strings(value: object, name: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"option {name!r} must be a list of names")
    return list(value)


def _mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"option {name!r} must be an object")
    return value


class JobStore:
    """The ``jobs`` table."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, template: str, options: Mapping[str, Any], actor: Actor) -> Job:
        run = build_run(template, options)  # refuse bad options now, not in the worker
        from finmaas.optimize.runs import OptimizeRun, check_parent

        if isinstance(run, OptimizeRun):
            check_parent(run, self.registry, actor)
        job_id = uuid.uuid4().hex
        spec = {
            "options": dict(options),
            "actor": {"name": actor.name, "role": actor.role, "tenant": actor.tenant},
        }
        with self.registry.write() as conn:
            conn.execute(
                sa.insert(jobs).values(
                    id=job_id,
                    template=template,
                    state="queued",
                    spec=spec,
                    tenant=actor.tenant,
                    created_by=actor.name,
                    created_at=self.registry.now(),
                    progress={"message": "queued"},
                    log="",
                    versions=[],
                )
            )
        return self.get(job_id)

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        """A job (of ``tenant`` only, when given); a job whose worker is gone is failed."""
        found = self._read(sa.select(jobs).where(jobs.c.id == job_id), tenant)
        if not found:
            raise NotFound(f"no job {job_id[:40]!r}")
        return found[0]

    def recent(self, tenant: str | None = None, limit: int = 50) -> list[Job]:
        """The latest jobs first (of ``tenant`` only, when given)."""
        return self._read(sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit), tenant)

    def _read(self, query: sa.Select[Any], tenant: str | None) -> list[Job]:
        """The jobs ``query`` selects, after failing those whose worker is gone."""
        if tenant is not None:
            query = query.where(jobs.c.tenant == tenant)
        with self.registry.read() as conn:
            rows = list(conn.execute(query).mappings())
        out = []
        for row in rows:
            reason = self._gone(row)
            if reason is not None:
                self.finish(row["id"], "failed", error=reason)
                with self.registry.read() as conn:
                    row = (
                        conn.execute(sa.select(jobs).where(jobs.c.id == row["id"])).mappings().one()
                    )
            out.append(_job(row))
        return out

    def actor(self, job_id: str) -> Actor:
        """Who the job acts as: who asked for it, from the job."""
        with self.registry.read() as conn:
            spec = conn.execute(sa.select(jobs.c.spec).where(jobs.c.id == job_id)).scalar_one()
        who = spec["actor"]
        return Actor(who["name"], role=who["role"], tenant=who["tenant"], origin=f"job:{job_id}")

    def start(self, job_id: str) -> None:
        now = self.registry.now()
        self._update(
            job_id,
            state="running",
            started_at=now,
            heartbeat_at=now,
            host=socket.gethostname(),
            pid=os.getpid(),
            progress={"message": "started"},
        )

    def report(self, job_id: str, message: str, log: list[str]) -> None:
        self._update(
            job_id,
            progress={"message": message},
            log="\n".join(log),
            heartbeat_at=self.registry.now(),
        )

    def heartbeat(self, job_id: str) -> None:
        self._update(job_id, heartbeat_at=self.registry.now())

    def finish(
        self,
        job_id: str,
        state: Literal["succeeded", "failed"],
        *,
        versions: list[dict[str, Any]] | None = None,
        error: str | None = None,
    ) -> None:
        """End a job that is not ended yet (the first ending wins)."""
        values: dict[str, Any] = {"state": state, "finished_at": self.registry.now()}
        if versions is not None:
            values["versions"] = versions
        if error is not None:
            values["error"] = error[:2000]
        with self.registry.write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(("queued", "running")))
                .values(**values)
            )

    def _update(self, job_id: str, **values: Any) -> None:
        with self.registry.write() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))

    def _gone(self, row: Any) -> str | None:
        """Why a job that is not ended has no worker any more, if it has none."""
        now = self.registry.now()
        if row["state"] == "queued":
            if now - _aware(row["created_at"]) > timedelta(seconds=START_SECONDS):
                return f"the job's worker did not start within {START_SECONDS:g} s"
            return None
        if row["state"] != "running":
            return None
        if row["host"] == socket.gethostname() and row["pid"] and not process_alive(row["pid"]):
            return f"the job's worker process (pid {row['pid']}) ended without finishing"
        beat = row["heartbeat_at"]
        if beat is not None and now - _aware(beat) > timedelta(seconds=STALE_SECONDS):
            return f"no heartbeat from the job's worker since {_aware(beat).isoformat()}"
        return None


def execute(
    run: Run,
    registry: Registry,
    artifacts: ArtifactStore,
    *,
    actor: Actor,
    max_bytes: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Run a template; the versions it registered, as the job lists them."""
    from finmaas.optimize.runs import OptimizeRun, optimize_version
    from finmaas.training.forecast_runs import ForecastRun, train_forecast
    from finmaas.training.runs import CreditRun, train_credit
    from finmaas.training.sentiment_runs import train_sentiment

    common: dict[str, Any] = {"actor": actor, "max_bytes": max_bytes, "progress": progress}
    if isinstance(run, CreditRun):
        return [
            {**_listed(t.version, t.candidate, t.selected), "fairness_flagged": list(t.flagged)}
            for t in train_credit(run, registry, artifacts, **common)
        ]
    if isinstance(run, OptimizeRun):
        result = optimize_version(run, registry, artifacts, **common)
        return [
            {
                **_listed(result.version, run.method, False),
                "parent": f"{run.name}@{run.version}",
                "report": result.markdown,
            }
        ]
    if isinstance(run, ForecastRun):
        forecast = train_forecast(run, registry, artifacts, **common)
        return [_listed(forecast.version, "forecast", forecast.staged)]
    sentiment = train_sentiment(run, registry, artifacts, **common)
    return [_listed(sentiment.version, "sentiment", sentiment.staged)]


def _listed(version: ModelVersion, candidate: str, staged: bool) -> dict[str, Any]:
    return {
        "model": version.model,
        "version": version.version,
        "candidate": candidate,
        "staging": staged,
        "metrics": {k: v for k, v in version.metrics.items() if not k.endswith("_sd")},
    }


def launch(settings: Settings, job: Job) -> subprocess.Popen[bytes]:
    """Start the job's worker in its own session, with the same home and database."""
    env = {
        **os.environ,
        "FINMAAS_HOME": str(settings.home),
        "FINMAAS_DATABASE_URL": settings.resolved_database_url,
        "FINMAAS_ARTIFACTS_DIR": str(settings.resolved_artifacts_dir),
        "FINMAAS_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
        "FINMAAS_MAX_ARTIFACT_BYTES": str(settings.max_artifact_bytes),
    }
    log_path = settings.home / "jobs" / f"{job.id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log_path.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own module, a job id we made
            [sys.executable, "-m", "finmaas.jobs.worker", job.id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a worker from a thread, so a long-lived parent (the server) leaves no
    zombie behind, which would look alive to :meth:`JobStore.get`."""
    threading.Thread(target=process.wait, name="finmaas-job-reaper", daemon=True).start()


class JobProgress:
    """The worker's progress callback: keeps the log, writes it now and then."""

    def __init__(self, store: JobStore, job_id: str, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.job_id = job_id
        self.clock = clock
        self.lines: list[str] = []
        self._written = -REPORT_SECONDS

    def __call__(self, message: str) -> None:
        self.lines.append(message[:MAX_LINE_CHARS])
        del self.lines[:-MAX_LOG_LINES]
        if self.clock() - self._written >= REPORT_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._written = self.clock()
        self.store.report(self.job_id, self.lines[-1] if self.lines else "", self.lines)


@contextlib.contextmanager
def heartbeat(store: JobStore, job_id: str) -> Any:
    """Beat every ``HEARTBEAT_SECONDS`` from a thread while the body runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat is not fatal
                store.heartbeat(job_id)

    thread = threading.Thread(target=beat, name="finmaas-job-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _job(row: Any) -> Job:
    progress = row["progress"] or {}
    return Job(
        id=row["id"],
        template=row["template"],
        state=row["state"],
        options=row["spec"]["options"],
        tenant=row["tenant"],
        created_by=row["created_by"],
        created_at=_aware(row["created_at"]),
        started_at=_aware(row["started_at"]) if row["started_at"] else None,
        finished_at=_aware(row["finished_at"]) if row["finished_at"] else None,
        message=str(progress.get("message", "")),
        log=row["log"].split("\n") if row["log"] else [],
        versions=list(row["versions"] or []),
        error=row["error"],
    )
