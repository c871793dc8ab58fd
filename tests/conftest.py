"""Fixtures shared by the whole suite, one OpenMP thread per xdist worker, and the
guard that fails a test which leaves a process running.

``database_url`` runs a test on SQLite and, when ``FINMAAS_TEST_POSTGRES_URL``
is set, again on PostgreSQL, each time in a fresh database (a fresh schema on
PostgreSQL, dropped afterwards), so xdist workers never share one.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.registry import LocalArtifactStore, Registry
from tests.processes import OWNER, ProcessInfo, kill_and_reap, processes_of, running
from tests.waiting import wait_until

POSTGRES_URL = os.environ.get("FINMAAS_TEST_POSTGRES_URL")


def pytest_configure(config: pytest.Config) -> None:
    """With xdist workers, one OpenMP thread per worker and per server it starts (unless
    OMP_NUM_THREADS says otherwise): workers that each spin a thread per core slow each
    other down far more than one thread each loses."""
    if config.getoption("numprocesses", default=None):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ[OWNER] = str(os.getpid())  # marks every process the tests start


EXIT_WITHIN = 10.0
"""Seconds a process a test started may take to go away after the test."""


def _left_behind(before: set[int]) -> dict[int, ProcessInfo]:
    """Processes this test process started, beyond ``before``, that have not gone within
    EXIT_WITHIN seconds; this process's own multiprocessing helper may stay."""

    def left() -> dict[int, ProcessInfo]:
        return {
            pid: info
            for pid, info in processes_of(os.getpid()).items()
            if pid not in before
            and not (
                info.ppid == os.getpid() and "multiprocessing.resource_tracker" in info.command
            )
        }

    wait_until(lambda: not left(), EXIT_WITHIN, interval=0.1)
    return left()


def _fail_if_left(before: set[int], what: str) -> None:
    if left := _left_behind(before):
        kill_and_reap(left)  # so they cannot disturb the tests that follow
        wait_until(lambda: not running(set(left)), EXIT_WITHIN)
        listed = "\n  ".join(str(info) for info in left.values())
        pytest.fail(
            f"{what} left {len(left)} process(es) behind (now killed); stop every process a "
            f"test starts, even when it fails (tests.processes.stop_process):\n  {listed}",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def no_process_left_by_the_session() -> Iterator[None]:
    """After the last test: what module and session fixtures started is gone too."""
    before = set(processes_of(os.getpid()))
    yield
    _fail_if_left(before, "the session's fixtures")


@pytest.fixture(autouse=True)
def no_process_left_by_the_test() -> Iterator[None]:
    """After each test: every process it started has exited and been waited for.

    Fixtures of a wider scope start before this one, so their servers are not the
    test's. When something the test started is still there, the garbage collector runs
    first, so a ``Popen`` dropped while its process still runs warns
    (``ResourceWarning``, an error here) in the test that dropped it. Only then: a
    full collection costs about 160 ms once the model libraries are loaded, which on
    every test would add minutes to the suite.
    """
    before = set(processes_of(os.getpid()))
    yield
    if set(processes_of(os.getpid())) - before:
        gc.collect()
    _fail_if_left(before, "this test")


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
