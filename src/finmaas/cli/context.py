"""What every CLI command gets: the settings and lazily opened stores."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from finmaas.actor import Actor, local_actor
from finmaas.config import Settings
from finmaas.registry import LocalArtifactStore, Registry


@dataclass
class CliContext:
    settings: Settings
    debug: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
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

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def cli_context(ctx: typer.Context) -> CliContext:
    state = ctx.find_root().obj
    assert isinstance(state, CliContext)
    return state
