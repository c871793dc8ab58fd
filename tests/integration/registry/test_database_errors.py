"""A locked or unreachable database is a clear error, and nothing is half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from finmaas.config import Settings
from finmaas.errors import Conflict, Invalid, Unavailable
from finmaas.registry import Registry
from finmaas.registry.database import create_engine
from finmaas.registry.migrate import current_revision, ensure_schema, head_revision, upgrade
from tests.integration.registry.helpers import new_version


def test_locked_sqlite_database_is_unavailable(sqlite_settings: Settings) -> None:
    registry = Registry.open(sqlite_settings.model_copy(update={"db_busy_timeout": 0.2}))
    registry.publish_version("m", new_version("a"), actor="a")
    holder = sqlite3.connect(sqlite_settings.home / "registry.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Unavailable) as err:
            registry.publish_version("m", new_version("b"), actor="a")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(err.value) == (
        f"database sqlite:///{sqlite_settings.home / 'registry.db'} is locked by another writer "
        "and stayed locked past the busy timeout; retry, or raise FINMAAS_DB_BUSY_TIMEOUT"
    )
    assert registry.get_model("m").latest_version == 1
    registry.close()


def test_unreachable_postgres_is_unavailable(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url="postgresql://finmaas:s3cret@127.0.0.1:1/finmaas",
        db_connect_timeout=1,
    )
    with pytest.raises(Unavailable) as err:
        Registry.open(settings)
    message = str(err.value)
    assert message.startswith(
        "database postgresql+psycopg://finmaas:***@127.0.0.1:1/finmaas is unreachable: "
    )
    assert "s3cret" not in message


def test_sqlite_under_a_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(Unavailable) as err:
        Registry.open(Settings(home=tmp_path, database_url=f"sqlite:///{blocker}/registry.db"))
    assert str(err.value) == (
        f"database sqlite:///{blocker}/registry.db cannot be used: cannot create folder {blocker} "
        "(File exists)"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://root@localhost/db",
            "database URL 'mysql://root@localhost/db' uses mysql; finmaas supports sqlite and postgresql",
        ),
        ("not a url", "database URL 'not a url' is not a valid SQLAlchemy URL"),
    ],
)
def test_unsupported_database_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        Registry.open(Settings(home=tmp_path, database_url=url))
    assert str(err.value) == message


def test_fresh_database_is_created_at_head(database_url: str) -> None:
    engine = create_engine(database_url)
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    assert upgrade(engine) == head_revision()  # idempotent
    engine.dispose()


def test_database_at_an_unknown_revision_is_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(Conflict) as err:
        ensure_schema(engine)
    assert str(err.value) == (
        f"database schema is at revision 9999, newer than this finmaas knows ({head_revision()}); "
        "upgrade finmaas"
    )
    engine.dispose()


def test_foreign_tables_without_revision_are_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE models (id INTEGER PRIMARY KEY)"))
    with pytest.raises(Conflict) as err:
        ensure_schema(engine)
    assert str(err.value) == (
        "database has finmaas tables but no schema revision; it was not created by finmaas db upgrade"
    )
    engine.dispose()
