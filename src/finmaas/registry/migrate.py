"""Schema migrations (Alembic), run programmatically on finmaas's own engine."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from finmaas.errors import Conflict
from finmaas.registry.database import WRITE, database_errors

_SCRIPT_LOCATION = "finmaas.registry:migrations"
_PG_MIGRATION_LOCK = 0x46494E4D  # "FINM": one migrator at a time per PostgreSQL database


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with database_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; return the revision it was at before."""
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
