"""``python -m finmaas.jobs.worker JOB_ID``: run one training job to its end.

Started by :func:`finmaas.jobs.runner.launch` with the home and database in
``FINMAAS_*`` variables. Exit code 0 when the job succeeded, 1 when it failed
(the reason is in the job), 2 when the job cannot be found or was not queued.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from pathlib import Path

from finmaas.config import Settings
from finmaas.errors import FinmaasError
from finmaas.jobs.runner import (
    UPLOADS,
    Job,
    JobProgress,
    JobStore,
    build_run,
    execute,
    heartbeat,
)
from finmaas.registry import LocalArtifactStore, Registry


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m finmaas.jobs.worker JOB_ID", file=sys.stderr)
        return 2
    job_id = args[0]
    settings = Settings()
    registry = Registry.open(settings)
    try:
        store = JobStore(registry)
        try:
            job = store.get(job_id)
        except FinmaasError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if job.state != "queued":
            print(f"error: job {job_id} is {job.state}, not queued", file=sys.stderr)
            return 2
        store.start(job_id)
        try:
            return _run(job, store, registry, settings)
        finally:
            _remove_upload(settings, job.options.get("data"))
    finally:
        registry.close()


def _run(job: Job, store: JobStore, registry: Registry, settings: Settings) -> int:
    progress = JobProgress(store, job.id)
    artifacts = LocalArtifactStore(
        settings.resolved_artifacts_dir, max_bytes=settings.max_artifact_bytes
    )
    try:
        with heartbeat(store, job.id):
            versions = execute(
                build_run(job.template, job.options),
                registry,
                artifacts,
                actor=store.actor(job.id),
                max_bytes=settings.max_upload_bytes,
                progress=progress,
            )
    except FinmaasError as exc:
        _failed(store, progress, job.id, str(exc))
        return 1
    except Exception as exc:
        traceback.print_exc()
        _failed(store, progress, job.id, f"{type(exc).__name__}: {exc}")
        return 1
    progress("done")
    progress.flush()
    store.finish(job.id, "succeeded", versions=versions)
    return 0


def _remove_upload(settings: Settings, data: object) -> None:
    """Delete the copy of an uploaded file once its job has ended: training data may
    hold personal data, and the lineage keeps its sha256."""
    uploads = (settings.home / UPLOADS).resolve()
    path = Path(str(data)).resolve()
    if path.parent.parent == uploads:
        shutil.rmtree(path.parent, ignore_errors=True)


def _failed(store: JobStore, progress: JobProgress, job_id: str, reason: str) -> None:
    progress(f"failed: {reason}")
    progress.flush()
    store.finish(job_id, "failed", error=reason)


if __name__ == "__main__":
    sys.exit(main())
