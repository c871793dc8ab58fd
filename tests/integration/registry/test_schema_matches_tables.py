"""The migrations build exactly the schema ``tables.py`` describes (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from finmaas.registry import Registry
from finmaas.registry.tables import metadata


def test_migrated_schema_has_no_differences_from_the_table_definitions(
    registry: Registry,
) -> None:
    with registry.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
