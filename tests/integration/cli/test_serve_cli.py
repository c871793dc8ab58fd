"""``finmaas serve`` binds its port before it prints or records anything (issue 21, item 5)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from finmaas.cli.main import main


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "--home",
                str(tmp_path / "home"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--insecure-no-auth",
            ]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert (
        captured.err == f"error: port 127.0.0.1:{port} is already in use (another finmaas serve?)\n"
    )
    assert captured.out == ""  # no banner


def test_an_address_it_cannot_listen_on_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--home", str(tmp_path / "home"), "serve", "--host", "192.0.2.1", "--port", "8080"]
    )
    assert code == 1
    assert capsys.readouterr().err == (
        "error: cannot listen on 192.0.2.1:8080: Cannot assign requested address\n"
    )
