"""The command itself: settings, db, serve, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.registry.migrate import head_revision
from finmaas.schema import signature_from_json
from tests.integration.cli.conftest import Cli


def test_db_upgrade_and_current(cli: Cli) -> None:
    first = cli("db", "upgrade")
    assert first.code == 0, first.err
    assert first.out.endswith(f"upgraded from empty to {head_revision()}\n")
    second = cli("db", "upgrade")
    assert second.out.endswith(f"already at revision {head_revision()}\n")
    current = cli("db", "current")
    assert current.out.endswith(f"at {head_revision()}, finmaas needs {head_revision()}\n")


def test_serve_refuses_an_unreachable_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--home", str(tmp_path), "--database-url", "postgresql://u@127.0.0.1:1/db", "serve"]
    )
    assert code == 1
    assert capsys.readouterr().err.startswith(
        "error: database postgresql+psycopg://u@127.0.0.1:1/db is unreachable: "
    )


def test_settings_travel_to_workers_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path, port=9001, workers=3, preload=True)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert Settings() == settings


def test_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--home",
            str(tmp_path),
            "--database-url",
            "postgresql://u:pw@127.0.0.1:1/db",
            "models",
            "list",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        "error: database postgresql+psycopg://u:***@127.0.0.1:1/db is unreachable: "
    )
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path), "--debug", "models", "show", "nope"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err
    assert err.endswith("error: model 'nope' not found\n")


def test_invalid_setting_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINMAAS_PORT", "not-a-port")
    code = main(["--home", str(tmp_path), "models", "list"])
    assert code == 1
    assert capsys.readouterr().err == (
        "error: invalid setting port (FINMAAS_PORT): Input should be a valid integer, unable to parse string as an integer\n"
    )


def test_usage_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path), "models", "promote", "credit", "not-a-number"])
    assert code == 2
    assert "Invalid value" in capsys.readouterr().err


def test_console_script_runs(tmp_path: Path, sqlite_settings: Settings) -> None:
    script = Path(sys.executable).with_name("finmaas")
    result = subprocess.run(
        [str(script), "--home", str(sqlite_settings.home), "models", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (1, "error: model 'nope' not found\n")
    help_text = subprocess.run(
        [str(script), "models", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for command in (
        "list",
        "show",
        "push",
        "promote",
        "rollback",
        "diff",
        "archive",
        "verify",
        "purge",
    ):
        assert command in help_text.stdout


def test_signature_infer_writes_a_pushable_signature(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text(
        "income,purpose,age,label\n1000,car,30,good\n2500,tv,45,bad\n1800,car,52,good\n"
    )
    out = tmp_path / "signature.json"
    result = cli(
        "signature",
        "infer",
        str(data),
        "--task",
        "binary",
        "--target",
        "label",
        "--positive-class",
        "bad",
        "--pii",
        "age",
        "-o",
        str(out),
    )
    assert (result.code, result.out) == (
        0,
        f"wrote {out} (3 inputs, task binary, positive class bad)\n",
    )
    signature = signature_from_json(out.read_bytes())
    assert (signature.classes, signature.positive_class) == (("good", "bad"), "bad")
    assert [(f.name, f.dtype, f.pii) for f in signature.inputs] == [
        ("income", "int", False),
        ("purpose", "category", False),
        ("age", "int", True),
    ]
    assert signature.inputs[1].categories == ("car", "tv")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "ranking"], "--task must be binary, multiclass or regression, got 'ranking'"),
        (
            ["--task", "binary", "--positive-class", "bad"],
            "a binary signature needs its classes: pass --classes or --target",
        ),
        (
            ["--task", "binary", "--target", "nope", "--positive-class", "bad"],
            "--target column 'nope' is not in train.csv",
        ),
        (["--task", "regression", "--pii", "ssn"], "pii column 'ssn' is not in the data"),
    ],
)
def test_signature_infer_errors(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "train.csv"
    data.write_text("income,label\n1000,good\n")
    result = cli("signature", "infer", str(data), *args)
    assert (result.code, result.err) == (1, f"error: {message}\n")


def test_unreadable_csv(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = cli("signature", "infer", str(empty), "--task", "regression")
    assert (result.code, result.err) == (
        1,
        f"error: data file '{empty}' is not a readable CSV (No columns to parse from file)\n",
    )


def test_artifacts_dir_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "elsewhere"
    code = main(
        [
            "--home",
            str(tmp_path / "home"),
            "--artifacts-dir",
            str(store),
            "quickstart",
            "--folds",
            "2",
            "--no-serve",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert len([p for p in (store / "sha256").rglob("*") if p.is_file()]) == 2
    assert not (tmp_path / "home" / "artifacts").exists()
