"""The ``finmaas`` commands, each imported from its module when it is used.

:class:`LazyCommands` is the root group. Its command table knows every command
by name, where it lives and its one-line summary, and builds a command (with
typer, exactly as ``add_typer`` and ``command`` would) only when the command line
asks for it, so ``finmaas serve`` never imports what ``finmaas train`` needs and
``finmaas --help`` imports no command at all: it lists the summaries (a test keeps
each equal to its command's own help, see :func:`summary_of`).
Every command built is checked before it runs against ``--server``
(:func:`finmaas.cli.control.check_runs_here`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class Entry(NamedTuple):
    target: str
    """``module:attribute`` of the typer app or command function."""
    summary: str
    """What ``finmaas --help`` lists: the first paragraph of the command's help."""


GROUPS = {
    "models": Entry("finmaas.cli.models:app", "Models, versions and aliases in the registry."),
    "signature": Entry("finmaas.cli.signature:app", "Model signatures: the inputs a model reads."),
    "db": Entry("finmaas.cli.db:app", "Metadata database: migrations."),
    "keys": Entry(
        "finmaas.cli.keys:app", "API keys: who may call the server, and with what limits."
    ),
    "audit": Entry("finmaas.cli.audit:app", "The audit trail of every control-plane change."),
    "decisions": Entry("finmaas.cli.decisions:app", "Decision records of decision models."),
    "log": Entry("finmaas.cli.log:app", "The prediction log (sampled inputs and outputs)."),
    "train": Entry("finmaas.cli.train:app", "Train models from data files with finance templates."),
    "jobs": Entry("finmaas.cli.train:jobs_app", "Training jobs: list, show, attach."),
}
"""Command groups: a ``typer.Typer`` each."""

COMMANDS = {
    "usage": Entry(
        "finmaas.cli.usage:usage",
        "Report usage; a running server flushes its counts at least every 5 s and on shutdown.",
    ),
    "explain": Entry(
        "finmaas.cli.explain:explain",
        "Explain a version's decisions: contributions in log-odds and adverse-action reasons.",
    ),
    "drift": Entry(
        "finmaas.cli.drift:drift",
        "PSI of the score and CSI of every input over a window of served rows.",
    ),
    "serve": Entry(
        "finmaas.cli.serve:serve",
        "Serve registered models over HTTP until stopped (SIGTERM drains in-flight requests).",
    ),
    "quickstart": Entry(
        "finmaas.cli.quickstart:quickstart",
        "Train two credit models on German Credit, register them, promote the better one, "
        "serve it.",
    ),
    "optimize": Entry(
        "finmaas.cli.optimize:optimize",
        "Quantise, prune or distill a version into a new, cheaper version, with a report "
        "against its parent (size, load time, latency, rows/s, metrics, fidelity).",
    ),
    "convert": Entry(
        "finmaas.cli.optimize:convert",
        "Convert a LightGBM, XGBoost or scikit-learn version to ONNX as a new version, "
        "checked to score the data's rows within 1e-5 of the original.",
    ),
}
"""Single commands: a typer command function each (typer lists them before the groups)."""


def summary_of(help_text: str | None) -> str:
    """The first paragraph of a command's help on one line: what the root help lists."""
    return " ".join((help_text or "").split("\n\n", 1)[0].split())


class LazyCommands(TyperGroup):
    """The root group, whose commands are built on first use (see :class:`CommandTable`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.table = CommandTable()
        self.commands = self.table
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only; typer's version builds every command

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name not in self.table.built:
            entry = COMMANDS.get(cmd_name) or GROUPS.get(cmd_name)
            if entry is not None:
                return TyperCommand(cmd_name, short_help=entry.summary)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with self._listing_summaries():
            super().format_help(ctx, formatter)

    @contextlib.contextmanager
    def _listing_summaries(self) -> Iterator[None]:
        """While the root help is printed, a command not yet built is its table summary."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False


class CommandTable(MutableMapping[str, Any]):
    """Every command's name; a command (a click command) is built when it is looked up."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    @property
    def built(self) -> dict[str, Any]:
        """The commands built so far (or added), by name."""
        return self._built

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS and name not in GROUPS:
                raise KeyError(name)
            self._built[name] = build_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from GROUPS
        yield from (name for name in self._built if name not in COMMANDS and name not in GROUPS)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in GROUPS or name in self._built


def build_command(name: str) -> Any:
    """The click command typer builds for ``name``, as if registered on the root app."""
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    holder.callback()(_no_options)  # a group even when it holds one command
    if name in GROUPS:
        holder.add_typer(_load(GROUPS[name].target), name=name)
    else:
        holder.command(name)(_load(COMMANDS[name].target))
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    _check_where_it_runs(command)
    return command


def _check_where_it_runs(command: Any) -> None:
    """Make ``command`` (and every command in it) check, before it runs, that it may run
    where the CLI points: a command with no ``/api`` route is refused against ``--server``."""
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _check_where_it_runs(sub)
        return
    invoke = command.invoke

    def checked_invoke(ctx: Any) -> Any:
        from finmaas.cli.control import check_runs_here

        check_runs_here(ctx.command_path, getattr(ctx.find_root().obj, "server", None))
        return invoke(ctx)

    command.invoke = checked_invoke


def _load(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(import_module(module), attribute)


def _no_options() -> None:
    """Placeholder callback of the holder group; never run."""
