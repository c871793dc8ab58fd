"""Opening a database at the newest revision does not import Alembic (issue 18, item 6)."""

from __future__ import annotations

import subprocess
import sys

from finmaas.config import Settings
from finmaas.registry.migrate import head_revision, newest_file_revision


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert newest_file_revision() == head_revision()


def test_opening_a_database_at_the_head_does_not_import_alembic(settings: Settings) -> None:
    home, url = str(settings.home), settings.database_url
    probe = (
        "import sys\n"
        "from finmaas.config import Settings\n"
        "from finmaas.registry import Registry\n"
        f"Registry.open(Settings(home={home!r}, database_url={url!r})).close()\n"
        "print('alembic' in sys.modules)\n"  # the first run creates the schema: Alembic
    )
    created = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    reopened = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert created.stdout.split() == ["True"]
    assert reopened.stdout.split() == ["False"]
