"""Settings: the one home of configuration.

Values come from keyword arguments (CLI flags), then ``FINMAAS_*`` environment
variables, then defaults. Nothing else in finmaas reads the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")


class Settings(BaseSettings):
    """Configuration of one finmaas deployment.

    Build it once (``Settings()`` reads the environment; ``Settings(home=...)``
    overrides) and pass it down; never read it from a global.
    """

    model_config = SettingsConfigDict(env_prefix="FINMAAS_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".finmaas")
    """Folder holding the embedded database, artifacts and logs."""

    database_url: str | None = None
    """SQLAlchemy URL of the metadata store; default: SQLite file ``<home>/registry.db``."""

    artifacts_dir: Path | None = None
    """Folder of the content-addressed artifact store; default ``<home>/artifacts``."""

    host: str = "127.0.0.1"
    """Interface the server binds to."""

    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port the server listens on (0 picks a free one)."""

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    """Server processes sharing the port; default one per core."""

    heap_arenas: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1, le=1024)
    """Most malloc arenas a worker's C heap may use (glibc's ``M_ARENA_MAX``; default two
    per core, where glibc's own is eight): arenas are never given back, so more of them
    is more resident memory kept as threads come and go."""

    db_busy_timeout: float = Field(default=5.0, gt=0, le=600)
    """Seconds a write waits for another writer's lock before failing as unavailable."""

    db_connect_timeout: float = Field(default=5.0, gt=0, le=600)
    """Seconds to wait for a database server to accept a connection."""

    max_artifact_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Largest artifact accepted on push."""

    allow_pickle: bool = False
    """Let this deployment load pickle/joblib versions an admin pushed explicitly."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0, le=1024**3)
    """Largest request body read into memory (every data-plane and ``/api`` body but a
    streamed upload); larger ones get 413."""

    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0, le=4 * 1024**3)
    """Largest upload: a ``multipart/form-data`` body publishing a model file or starting
    a training job, streamed to disk under ``<home>/uploads``, never held in memory."""

    max_concurrent_uploads: int = Field(default=2, ge=1, le=64)
    """Uploads one worker receives at once; one more is refused at once with 503 and
    ``Retry-After``, before its body is read."""

    max_request_rows: int = Field(default=4096, ge=1, le=1_000_000)
    """Most rows (instances) one inference request may carry."""

    max_batch_rows: int = Field(default=64, ge=1, le=100_000)
    """Most rows the adaptive batcher puts in one model call."""

    max_batch_wait_us: int = Field(default=500, ge=0, le=1_000_000)
    """Longest a request waits for others to share its model call, in microseconds."""

    max_inline_call_us: int = Field(default=500, ge=0, le=100_000)
    """A model whose calls average under this many microseconds is scored on the event
    loop, not on a model thread (the hand-over costs more than such a call); a
    request larger than a batch still goes to a thread. 0: always on a thread."""

    max_queue_rows: int = Field(default=16_384, ge=1)
    """Rows that may wait per model before requests are refused with 503."""

    max_model_memory: int = Field(default=4 * 1024**3, gt=0)
    """Bytes of loaded models kept per worker; least recently used unaliased ones go first."""

    serve_model: str | None = Field(default=None, max_length=200)
    """``NAME[@alias|@version]`` answered on the MLflow ``/invocations`` endpoint."""

    preload: bool = False
    """Load every aliased version at start instead of on first use."""

    alias_refresh_interval: float = Field(default=0.5, gt=0, le=60)
    """Seconds between reads of the alias table; bounds how stale a moved alias can be."""

    insecure_no_auth: bool = False
    """Serve without API keys: every caller is an anonymous admin. For a laptop demo only."""

    single_approver: bool = False
    """Relax four-eyes: the author of a version may also approve it (audited at start)."""

    redis_url: str | None = None
    """Redis for rate limits, quotas and concurrency caps exact across workers and hosts."""

    access_refresh_interval: float = Field(default=0.5, gt=0, le=60)
    """Seconds between reads of keys and model policies; bounds how late a revocation bites."""

    access_log: str = Field(default="stdout", min_length=1, max_length=1000)
    """One JSON line per request: ``stdout`` (default), ``off``, or a file to append to."""

    count_drift: bool = True
    """Count every served row into its version's reference bins, for drift reports."""

    drift_min_rows: int = Field(default=100, ge=1, le=100_000_000)
    """Served rows a window needs before drift reports and the ``finmaas_score_psi`` and
    ``finmaas_feature_csi`` gauges give an index: a few rows in ten bins look like
    drift by chance (two rows gave a PSI of 6.8)."""

    metrics_dir: Path | None = None
    """Where the workers of one server share state (metrics snapshots, the models a
    repository client unloaded); ``serve`` sets it (under ``home/run``) when it starts
    several workers, and removes it when it stops."""

    decision_retention_days: int = Field(default=183, ge=1, le=36_500)
    """Days decision records are kept (default about 6 months); older ones are purged
    by the server every hour and by ``finmaas decisions purge``."""

    max_pending_decisions: int = Field(default=10_000, ge=1, le=10_000_000)
    """Decision records a worker may hold unwritten; beyond that, requests of decision
    models wait for the writer (back-pressure) instead of records being dropped."""

    pii_masking: Literal["hash", "redact"] = "hash"
    """What the prediction log writes for an input marked ``pii``: a keyed hash (the
    same value always gives the same hash, so joins still work) or ``"[redacted]"``."""

    prediction_log_format: Literal["parquet", "jsonl"] = "parquet"
    """The prediction log's files: Parquet (a fifth to a quarter of the writer's CPU per
    logged row; a file is readable once closed) or JSON Lines (readable as it grows)."""

    prediction_log_max_bytes: int = Field(default=64 * 1024**2, ge=4096, le=16 * 1024**3)
    """Size at which a prediction-log file is closed and the next one started (for
    Parquet, of the rows uncompressed: the file on disk is several times smaller)."""

    prediction_log_rotate_seconds: float = Field(default=50.0, ge=1.0, le=86_400.0)
    """Seconds after which an open Parquet prediction-log file is closed, and so can be
    exported; it also closes at the end of its UTC day and when the server stops. The
    default lets ``finmaas log export`` see a row within a minute of it being served
    (a row waits up to a second to be written, and a second for the check that closes
    files); a larger value makes fewer, larger files."""

    prediction_log_retention_days: int = Field(default=90, ge=1, le=36_500)
    """Days prediction-log files are kept; the server deletes older ones every hour."""

    usage_flush_interval: float = Field(default=2.0, gt=0, le=5)
    """Seconds between writes of the usage counters to the database (at most 5)."""

    ssl_certfile: Path | None = None
    """PEM certificate: serve HTTPS (with ``ssl_keyfile``)."""

    ssl_keyfile: Path | None = None
    """PEM private key of ``ssl_certfile``."""

    cors_origins: str = Field(default="", max_length=4000)
    """Browser origins allowed to call the API, comma-separated (``https://app.bank.example``).

    Empty (the default) turns CORS off: no ``Access-Control-*`` header is ever sent,
    so browsers on other origins cannot read responses. ``*`` is refused: keys are
    credentials, and a wildcard would let any web page spend them.
    """

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        origins = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin[:80]!r} is not an origin like https://app.bank.example[:port] "
                    "(scheme and host only; no wildcard, path or trailing slash)"
                )
        return ",".join(origins)

    @property
    def allowed_origins(self) -> frozenset[bytes]:
        return frozenset(o.encode() for o in self.cors_origins.split(",") if o)

    @field_validator("home", "artifacts_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    shutdown_timeout: float = Field(default=10.0, gt=0, le=600)
    """Seconds in-flight requests get to finish after SIGTERM before the server exits."""

    worker_healthcheck_timeout: int = Field(default=10, ge=1, le=600)
    """Seconds the supervisor of several workers waits for a worker to answer its health
    check before it replaces the worker as hung. A worker answers from a thread as soon
    as its interpreter is up (about 0.15 s of CPU, since a worker no longer imports the
    CLI's commands first), so the bound is for a start under heavy load. Not longer:
    a worker that dies while a health check waits for it is replaced only when the
    check times out (uvicorn keeps its end of the pipe open, so no EOF arrives)."""

    def to_env(self) -> dict[str, str]:
        """These settings as ``FINMAAS_*`` variables, to hand to server worker processes."""
        out = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out[f"FINMAAS_{name.upper()}"] = text
        return out

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'registry.db'}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir if self.artifacts_dir is not None else self.home / "artifacts"


class RemoteSettings(BaseSettings):
    """Where the CLI sends its control-plane commands instead of the local database:
    ``--server`` / ``FINMAAS_SERVER`` and the key it sends, ``--api-key`` /
    ``FINMAAS_API_KEY`` (the environment keeps the key out of the process list)."""

    model_config = SettingsConfigDict(env_prefix="FINMAAS_", extra="ignore", frozen=True)

    server: str | None = None
    """Base URL of a finmaas server, like ``https://finmaas.bank.example``."""

    api_key: SecretStr | None = None
    """The key sent as ``Authorization: Bearer``; never printed."""

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://\S{1,2000}", value):
            raise ValueError("must be an http:// or https:// URL")
        return value
