"""What a control-plane handler is given: the services over the registry, and its call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from finmaas.api.changes import ChangeGate
from finmaas.config import Settings
from finmaas.jobs.runner import JobStore
from finmaas.monitoring.store import DriftStore
from finmaas.registry import ArtifactStore, Registry
from finmaas.registry.key_store import KeyStore
from finmaas.registry.usage import UsageStore
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal
from finmaas.web.http import Request, Response


@dataclass(frozen=True)
class Services:
    """The registry, the stores over it and the change gate, built once per app."""

    registry: Registry
    guard: Guard
    store: ArtifactStore
    settings: Settings
    jobs: JobStore
    keys: KeyStore
    usage: UsageStore
    drift: DriftStore
    changes: ChangeGate

    @classmethod
    def over(
        cls, registry: Registry, guard: Guard, store: ArtifactStore, settings: Settings
    ) -> Services:
        return cls(
            registry,
            guard,
            store,
            settings,
            jobs=JobStore(registry),
            keys=KeyStore(registry),
            usage=UsageStore(registry),
            drift=DriftStore(registry),
            changes=ChangeGate(registry, guard),
        )


@dataclass(frozen=True)
class Call:
    """One request to a route: who calls, the path's parameters, the roles the route admits."""

    request: Request
    principal: Principal
    params: Mapping[str, str]
    roles: tuple[str, ...]

    @property
    def tenant(self) -> str | None:
        """The tenant whose objects the caller sees; None (every tenant) for an admin."""
        return None if self.principal.is_admin else self.principal.tenant


Handler = Callable[[Services, Call], Awaitable[Response]]
