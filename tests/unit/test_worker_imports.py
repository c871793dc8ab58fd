"""A server worker imports only what serving needs (issue 18, item 6).

uvicorn spawns each worker with multiprocessing ``spawn``, which re-imports the
parent's ``__main__`` (the ``finmaas`` script, hence :mod:`finmaas.cli.main`) and
then imports the app. Training and analysis libraries there cost seconds per
worker start, long enough on a busy machine for the supervisor to kill the
worker as hung, over and over.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NOT_FOR_SERVING = ("pandas", "scipy", "sklearn", "lightgbm", "xgboost", "onnx", "skl2onnx")

PROBE = """
import sys
import finmaas.cli.main, finmaas.cli.serve, finmaas.app, uvicorn.supervisors.multiprocess
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.fixture(scope="module")
def worker_modules() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("library", NOT_FOR_SERVING)
def test_a_worker_start_does_not_import(worker_modules: set[str], library: str) -> None:
    assert library not in worker_modules


def test_the_command_table_lists_every_command_without_importing_them() -> None:
    probe = (
        "import sys\n"
        "from finmaas.cli.root import app\n"
        "import typer\n"
        "group = typer.main.get_command(app)\n"
        "print(','.join(group.list_commands(None)))\n"
        "print(sorted(m for m in sys.modules if m.startswith('finmaas.cli.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    names, modules = done.stdout.splitlines()
    assert names == (
        "usage,explain,drift,serve,quickstart,optimize,convert,"
        "models,signature,db,keys,audit,decisions,log,train,jobs"
    )
    assert modules == "['finmaas.cli.commands', 'finmaas.cli.root']"


def test_the_script_module_imports_nothing_before_the_health_check_thread_runs() -> None:
    """What a spawned worker runs before uvicorn's thread can answer the supervisor."""
    probe = "import sys\nimport finmaas.cli.main\nprint(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(done.stdout.split())
    assert {name for name in loaded if name.startswith("finmaas")} == {
        "finmaas",
        "finmaas.cli",
        "finmaas.cli.main",
        "finmaas.lazy",  # the package's PEP 562 names: the standard library only
    }
    assert not loaded & {"typer", "pydantic", "numpy", "sqlalchemy"}
