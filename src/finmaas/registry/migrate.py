"""Schema migrations (Alembic), run programmatically on finmaas's own engine.

Alembic is imported only to migrate or to explain a mismatch: opening a database
already at the newest revision (every server worker start) reads the revision
with one query and the migration files' ``revision``/``down_revision`` lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from finmaas.errors import Conflict
from finmaas.registry.database import WRITE, database_errors

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPT_LOCATION = "finmaas.registry:migrations"
_VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*(None|"([^"]*)")\s*$', re.MULTILINE)
_PG_MIGRATION_LOCK = 0x46494E4D  # "FINM": one migrator at a time per PostgreSQL database


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; return the revision it was at before."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with database_errors(engine), engine.connect().execution_options(**{WRITE: True}) as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        try:
            before = MigrationContext.configure(conn).get_current_revision()
            if conn.in_transaction():
                conn.commit()
            command.upgrade(_config(conn), revision)
            if conn.in_transaction():
                conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                with conn.begin():
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
    return before


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse a database at another revision."""
    if _stored_revision(engine) == newest_file_revision():
        return
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        with database_errors(engine), engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        if tables & {"models", "model_versions"}:
            raise Conflict(
                "database has finmaas tables but no schema revision; "
                "it was not created by finmaas db upgrade"
            )
        upgrade(engine)
        return
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise Conflict(
            f"database schema is at revision {current}, newer than this finmaas knows "
            f"({head}); upgrade finmaas"
        )
    raise Conflict(
        f"database schema is at revision {current} but this finmaas needs {head}; "
        "run `finmaas db upgrade`"
    )


def newest_file_revision() -> str | None:
    """The head revision read from the migration files without Alembic: the one
    revision no other names as its ``down_revision`` (None when that is not one)."""
    revisions: set[str | None] = set()
    parents: set[str | None] = set()
    for script in _VERSIONS.glob("*.py"):
        for key, _, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value or None)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    """The revision the database records, or None (no table yet, or any doubt)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None
