"""Every command's ``--help`` reads as plain text: typer shows a command's docstring
and each option's help as written, so reStructuredText markup (double backticks,
``:class:`` roles) would reach the reader as is."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from finmaas.cli.commands import COMMANDS, GROUPS, build_command
from finmaas.cli.root import app

MARKUP = re.compile(r"``|:[a-z]+:`")
"""Double backticks, and roles like :class:`…`, :func:`…`, :mod:`…`."""


def _paths() -> list[tuple[str, ...]]:
    """Every command line that has a help page: the root, each command, each subcommand."""
    paths: list[tuple[str, ...]] = [()]
    for name in (*COMMANDS, *GROUPS):
        paths.append((name,))
        command = build_command(name)  # as the root's lazy table builds it
        for sub in getattr(command, "commands", {}):
            paths.append((name, sub))
    return paths


PATHS = _paths()


def test_the_walk_reaches_every_command() -> None:
    assert ("serve",) in PATHS
    assert ("models", "promote") in PATHS
    assert ("jobs", "attach") in PATHS
    assert len(PATHS) > 40


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(path) or "finmaas")
def test_help_has_no_rst_markup(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="finmaas", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage: finmaas" in result.output
    found = [line.strip() for line in result.output.splitlines() if MARKUP.search(line)]
    assert found == [], f"finmaas {' '.join(path)} --help shows markup"
