"""The ``finmaas`` commands, each imported from its module when it is used.

:class:`LazyCommands` is the root group. Its command table knows every command
by name and where it lives, and builds a command (with typer, exactly as
``add_typer`` and ``command`` would) only when the command line or ``--help``
asks for it, so ``finmaas serve`` never imports what ``finmaas train`` needs.
Every command built is checked before it runs against ``--server``
(:func:`finmaas.cli.control.check_runs_here`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

GROUPS = {
    "models": "finmaas.cli.models:app",
    "signature": "finmaas.cli.signature:app",
    "db": "finmaas.cli.db:app",
    "keys": "finmaas.cli.keys:app",
    "audit": "finmaas.cli.audit:app",
    "decisions": "finmaas.cli.decisions:app",
    "log": "finmaas.cli.log:app",
    "train": "finmaas.cli.train:app",
    "jobs": "finmaas.cli.train:jobs_app",
}
"""Command groups: a ``typer.Typer`` each."""

COMMANDS = {
    "usage": "finmaas.cli.usage:usage",
    "explain": "finmaas.cli.explain:explain",
    "drift": "finmaas.cli.drift:drift",
    "serve": "finmaas.cli.serve:serve",
    "quickstart": "finmaas.cli.quickstart:quickstart",
    "optimize": "finmaas.cli.optimize:optimize",
    "convert": "finmaas.cli.optimize:convert",
}
"""Single commands: a typer command function each (typer lists them before the groups)."""


class LazyCommands(TyperGroup):
    """The root group, whose commands are built on first use (see :class:`CommandTable`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = CommandTable()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only; typer's version builds every command


class CommandTable(MutableMapping[str, Any]):
    """Every command's name; a command (a click command) is built when it is looked up."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

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
        holder.add_typer(_load(GROUPS[name]), name=name)
    else:
        holder.command(name)(_load(COMMANDS[name]))
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
