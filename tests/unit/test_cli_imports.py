"""The CLI answers at once: ``finmaas --help`` builds no command and ``finmaas models
list`` imports only the registry's path (issue 21, item 4).

Each probe runs in a fresh interpreter and reads ``sys.modules``: what a command
imports is what it costs, whatever the speed of the machine the suite runs on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finmaas.cli.commands import COMMANDS, GROUPS, build_command, summary_of

MODEL_LIBRARIES = ("lightgbm", "xgboost", "onnxruntime", "onnx", "pandas", "sklearn", "scipy")
NOT_FOR_HELP = (*MODEL_LIBRARIES, "numpy", "sqlalchemy", "pydantic_settings")

PROBE = """
import sys
from finmaas.cli.main import main
code = main(sys.argv[1:])
print("MODULES", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
print("FINMAAS", " ".join(sorted(name for name in sys.modules if name.startswith("finmaas"))))
sys.exit(code)
"""


def run_cli(*args: str, home: Path) -> tuple[str, set[str], set[str]]:
    """The output of ``finmaas ARGS`` in a new interpreter, the top-level packages it
    imported and its finmaas modules."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
    env |= {"FINMAAS_HOME": str(home), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output, _, tail = done.stdout.rpartition("MODULES ")
    modules, _, finmaas_modules = tail.partition("\nFINMAAS ")
    return output, set(modules.split()), set(finmaas_modules.split())


@pytest.fixture(scope="module")
def root_help(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, set[str], set[str]]:
    return run_cli("--help", home=tmp_path_factory.mktemp("home"))


@pytest.mark.parametrize("library", NOT_FOR_HELP)
def test_the_root_help_does_not_import(
    root_help: tuple[str, set[str], set[str]], library: str
) -> None:
    assert library not in root_help[1]


def test_the_root_help_builds_no_command(root_help: tuple[str, set[str], set[str]]) -> None:
    commands = {name for name in root_help[2] if name.startswith("finmaas.cli.")}
    assert commands == {"finmaas.cli.commands", "finmaas.cli.main", "finmaas.cli.root"}


@pytest.mark.parametrize("name", [*COMMANDS, *GROUPS])
def test_the_root_help_lists_each_command_with_its_summary(
    root_help: tuple[str, set[str], set[str]], name: str
) -> None:
    summary = (COMMANDS | GROUPS)[name].summary
    assert any(
        line.split() == ["│", name, *summary.split(), "│"] for line in root_help[0].splitlines()
    )


@pytest.mark.parametrize("name", [*COMMANDS, *GROUPS])
def test_each_table_summary_is_its_commands_own_help(name: str) -> None:
    """The table's copy cannot drift from the docstring or ``help=`` it repeats."""
    assert (COMMANDS | GROUPS)[name].summary == summary_of(build_command(name).help)


def test_models_list_imports_the_registry_and_no_model_library(tmp_path: Path) -> None:
    output, modules, _ = run_cli("models", "list", home=tmp_path)
    assert output.startswith("no models yet")
    assert "sqlalchemy" in modules
    assert not modules & {*MODEL_LIBRARIES, "numpy"}


def test_the_version_imports_no_settings(tmp_path: Path) -> None:
    output, modules, _ = run_cli("--version", home=tmp_path)
    assert output.startswith("finmaas ")
    assert not modules & set(NOT_FOR_HELP)
