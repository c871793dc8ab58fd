"""Printing helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)
if not console.is_terminal:
    # Piped output is read by people in logs and CI, not squeezed into 80 columns.
    console.width = 132


def echo_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def table(*columns: str, title: str | None = None) -> Table:
    out = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        out.add_column(column)
    return out


@contextlib.contextmanager
def progress_steps(title: str) -> Iterator[Callable[[str], None]]:
    """A progress bar for work of unknown length; call the yielded function per step.

    When the output is not a terminal (a pipe, a CI log) a bar would print nothing,
    so each step is one line, ``<title>: <message>``, instead."""
    if not console.is_terminal:

        def line(message: str) -> None:
            console.print(f"{title}: {message}", markup=False)

        yield line
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed:.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None)

        def step(message: str) -> None:
            progress.update(task, description=f"{title}: {message}", advance=1)

        yield step
