"""Settings: the one home of configuration.

Values come from keyword arguments (CLI flags), then ``FINMAAS_*`` environment
variables, then defaults. Nothing else in finmaas reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    workers: int = Field(default=1, ge=1, le=256)
    """Server processes; one per core is a good start."""

    db_busy_timeout: float = Field(default=5.0, gt=0, le=600)
    """Seconds a write waits for another writer's lock before failing as unavailable."""

    db_connect_timeout: float = Field(default=5.0, gt=0, le=600)
    """Seconds to wait for a database server to accept a connection."""

    max_artifact_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Largest artifact accepted on push."""

    allow_pickle: bool = False
    """Let this deployment load pickle/joblib versions an admin pushed explicitly."""

    @field_validator("home", "artifacts_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'registry.db'}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir if self.artifacts_dir is not None else self.home / "artifacts"
