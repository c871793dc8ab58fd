"""What every CLI command gets: the settings, lazily opened stores, and the control
plane its control-plane commands act on (:mod:`finmaas.cli.control`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from finmaas.actor import Actor, local_actor
from finmaas.config import Settings
from finmaas.registry import LocalArtifactStore, Registry

if TYPE_CHECKING:
    from finmaas.cli.control import ControlPlane


@dataclass
class CliContext:
    settings: Settings
    debug: bool = False
    server: str | None = None
    """A server's URL: the control-plane commands go to its ``/api`` (``--server``)."""
    api_key: str | None = field(default=None, repr=False)
    """The key sent to ``server``; never printed."""
    _registry: Registry | None = field(default=None, repr=False)
    _control: ControlPlane | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
        if self.server is not None:  # a command outside REMOTE_COMMANDS is refused first
            raise AssertionError("the local registry is not opened against --server")
        if self._registry is None:
            self._registry = Registry.open(self.settings)
        return self._registry

    @property
    def store(self) -> LocalArtifactStore:
        return LocalArtifactStore(
            self.settings.resolved_artifacts_dir, max_bytes=self.settings.max_artifact_bytes
        )

    @property
    def actor(self) -> Actor:
        return local_actor()

    @property
    def control(self) -> ControlPlane:
        """The local registry as the local admin, or the server's ``/api`` with the key."""
        if self._control is None:
            if self.server is not None:
                from finmaas.cli.control_remote import RemoteControl
                from finmaas.client import Client

                client = Client(self.server, api_key=self.api_key, timeout=60.0)
                self._control = RemoteControl(client)
            else:
                from finmaas.cli.control_local import LocalControl

                self._control = LocalControl(self.registry, self.store, self.settings, self.actor)
        return self._control

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def cli_context(ctx: typer.Context) -> CliContext:
    state = ctx.find_root().obj
    assert isinstance(state, CliContext)
    return state
