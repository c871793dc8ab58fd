"""Engines for the metadata store, and translation of driver errors.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the
lock instead of deadlocking when both upgrade from a read. PostgreSQL is used
through psycopg 3; writers serialise on row locks.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from finmaas.errors import Invalid, Unavailable

WRITE = "finmaas_write"
"""Execution option that makes a SQLite transaction ``BEGIN IMMEDIATE``."""


def normalise_url(url: str) -> URL:
    """Parse a database URL and pick the drivers finmaas ships (psycopg 3)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise Invalid(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise Invalid(
            f"database URL {safe_url(parsed)!r} uses {parsed.get_backend_name()}; "
            "finmaas supports sqlite and postgresql"
        )
    return parsed


def safe_url(url: URL | str) -> str:
    """The URL with any password hidden, for messages and logs."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def create_engine(url: str, *, busy_timeout: float = 5.0, connect_timeout: float = 5.0) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout)
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, round(connect_timeout))},
    )


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(
                f"database {safe_url(url)} cannot be used: cannot create folder {folder} "
                f"({exc.strerror})"
            ) from None
    engine = sa.create_engine(url, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextlib.contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Turn 'locked' and 'unreachable' driver errors into :class:`Unavailable`."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise Unavailable(describe_operational_error(engine, exc)) from exc
    except sa.exc.InterfaceError as exc:
        raise Unavailable(f"database {safe_url(engine.url)} failed: {_first_line(exc)}") from exc


def describe_operational_error(engine: Engine, exc: sa.exc.OperationalError) -> str:
    where = safe_url(engine.url)
    detail = _first_line(exc.orig if exc.orig is not None else exc)
    if "locked" in detail or "busy" in detail:
        return (
            f"database {where} is locked by another writer and stayed locked past the "
            "busy timeout; retry, or raise FINMAAS_DB_BUSY_TIMEOUT"
        )
    if engine.url.get_backend_name() == "sqlite":
        return f"database {where} cannot be used: {detail}"
    return f"database {where} is unreachable: {detail}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
