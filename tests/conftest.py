"""Fixtures shared by the whole suite, and one OpenMP thread per xdist worker.

``database_url`` runs a test on SQLite and, when ``FINMAAS_TEST_POSTGRES_URL``
is set, again on PostgreSQL, each time in a fresh database (a fresh schema on
PostgreSQL, dropped afterwards), so xdist workers never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.registry import LocalArtifactStore, Registry

POSTGRES_URL = os.environ.get("FINMAAS_TEST_POSTGRES_URL")


def pytest_configure(config: pytest.Config) -> None:
    """With xdist workers, one OpenMP thread per worker and per server it starts (unless
    OMP_NUM_THREADS says otherwise): workers that each spin a thread per core slow each
    other down far more than one thread each loses."""
    if config.getoption("numprocesses", default=None):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def _backends() -> list[object]:
    postgres = pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="FINMAAS_TEST_POSTGRES_URL is not set"),
        ],
    )
    return ["sqlite", postgres]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    assert POSTGRES_URL is not None
    schema = f"finmaas_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, db_busy_timeout=10)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The embedded default: everything under one home folder."""
    return Settings(home=tmp_path / "home")


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    opened = Registry.open(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(settings: Settings) -> LocalArtifactStore:
    return LocalArtifactStore(settings.resolved_artifacts_dir)
