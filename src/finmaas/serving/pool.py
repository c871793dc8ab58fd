"""ModelPool: name + alias/version → an immutable, loaded model ready to serve.

* Aliases are resolved from an in-memory snapshot of the registry that a
  background task refreshes every ``refresh_interval`` seconds: no database
  read on the request path, and a moved alias reaches every worker within
  that bound plus the time to load the new version.
* When an alias moves to a version that is not loaded yet and the old one is
  loaded, the new version is loaded in the background first; requests keep
  going to the old version until it is ready. If the load fails, the old
  version keeps serving and the failure is kept in :attr:`ModelPool.errors`.
* A ``LoadedModel`` never changes; a request that got one finishes on it even
  if the alias moves meanwhile. Evicted models close their batcher, which
  lets queued requests finish first.
* Loaded versions are kept under ``max_memory`` bytes (artifact size stands in
  for memory): least recently used versions that no alias serves go first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from finmaas.background import cancel, every
from finmaas.errors import FinmaasError, ModelUnloaded, NotFound
from finmaas.explain import Explainer
from finmaas.monitoring.counts import LiveCounts, binnings_of
from finmaas.monitoring.metrics import BatchTimings, ServiceMetrics
from finmaas.publish.loading import load_artifact
from finmaas.registry import AliasSnapshot, ArtifactStore, ModelVersion, Registry
from finmaas.runtimes import Predictor
from finmaas.schema import RecordEncoder
from finmaas.schema.output_rule import DecisionRule
from finmaas.schema.signature import ModelSignature
from finmaas.serving.batching import AdaptiveBatcher, Predict, Served
from finmaas.serving.unloaded import UnloadedModels

log = logging.getLogger("finmaas.serving")

DEFAULT_ALIAS = "production"
Key = tuple[str, int]


class BatcherFactory(Protocol):
    """Makes the batcher of one function of encoded rows: a model's predict, or its
    contributions; ``timings`` receives each call's time and rows, ``served`` each
    successful call's rows and scores."""

    def __call__(
        self,
        predict: Predict,
        *,
        timings: BatchTimings | None = None,
        served: Served | None = None,
    ) -> AdaptiveBatcher: ...


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One version, loaded: everything a request needs, prepared once."""

    version: ModelVersion
    signature: ModelSignature
    predictor: Predictor
    encoder: RecordEncoder
    rule: DecisionRule
    batcher: AdaptiveBatcher
    explainer: Explainer
    explain_batcher: AdaptiveBatcher | None
    """Batches contribution calls; None when the version has no explanation method."""
    live: LiveCounts
    """What this version served, pending binning for drift."""
    codecs: dict[str, object] = field(default_factory=dict)
    """Per-protocol decoders built on first use (e.g. the V2 decoder)."""

    @property
    def name(self) -> str:
        return self.version.model

    @property
    def number(self) -> int:
        return self.version.version

    @property
    def memory(self) -> int:
        return self.version.artifact_size

    async def close(self) -> None:
        await self.batcher.close()
        if self.explain_batcher is not None:
            await self.explain_batcher.close()


class ModelPool:
    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        *,
        batcher_factory: BatcherFactory,
        count_drift: bool = True,
        max_memory: int = 4 * 1024**3,
        allow_pickle: bool = False,
        refresh_interval: float = 0.5,
        preload: bool = False,
        metrics: ServiceMetrics | None = None,
        unloaded: UnloadedModels | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.store = store
        self.batcher_factory = batcher_factory
        self.count_drift = count_drift
        self.max_memory = max_memory
        self.allow_pickle = allow_pickle
        self.refresh_interval = refresh_interval
        self.preload = preload
        self.unloaded = unloaded or UnloadedModels()
        """Models a repository client unloaded from this server (see :meth:`unload`)."""
        self.errors: dict[Key, str] = {}
        """Why a version failed to load, for health and metadata endpoints."""
        self._snapshot = AliasSnapshot(models=frozenset(), aliases={})
        self._serving: dict[tuple[str, str], int] = {}
        self._loaded: OrderedDict[Key, LoadedModel] = OrderedDict()
        self._loading: dict[Key, asyncio.Task[LoadedModel]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._ready = False

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await self.refresh()
        if self.preload:
            for (name, _alias), version in sorted(self._serving.items()):
                if name in self.unloaded:  # a replaced worker of a server that unloaded it
                    continue
                with contextlib.suppress(FinmaasError):
                    await self.load(name, version)
        self._watcher = every(
            self.refresh_interval,
            self.refresh,
            name="finmaas-alias-refresh",
            log=log,
            failed="alias refresh failed",
            expected=FinmaasError,  # database unavailable: keep serving what we know
            warning="could not refresh aliases: %s",
        )
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        await cancel(self._watcher)
        for loaded in list(self._loaded.values()):
            await loaded.close()
        self._loaded.clear()

    @property
    def ready(self) -> bool:
        return self._ready

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    @property
    def memory(self) -> int:
        return sum(m.memory for m in self._loaded.values())

    # -- resolving ------------------------------------------------------------

    def model_names(self) -> list[str]:
        return sorted(self._snapshot.models)

    def model_exists(self, name: str) -> bool:
        return name in self._snapshot.models

    def resolve(self, name: str, alias: str = DEFAULT_ALIAS) -> int:
        """The version ``alias`` serves now (from memory)."""
        version = self._serving.get((name, alias))
        if version is None:
            if name not in self._snapshot.models:
                raise NotFound(f"model {name!r} not found")
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        return version

    async def servable_versions(self, name: str | None = None) -> dict[str, list[int]]:
        """Every version the registry holds that may be served (not archived), by model:
        for metadata and the repository index, never the request path."""
        return await asyncio.to_thread(self.registry.servable_versions, name)

    def aliases_of(self, name: str) -> dict[str, int]:
        return {alias: v for (model, alias), v in self._serving.items() if model == name}

    async def get(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> LoadedModel:
        """The loaded model for ``version``, or for ``alias`` (default ``production``)."""
        if name in self.unloaded:
            raise ModelUnloaded(
                f"model {name!r} is unloaded from this server; "
                f"POST /v2/repository/models/{name}/load serves it again"
            )
        number = version if version is not None else self.resolve(name, alias or DEFAULT_ALIAS)
        loaded = self._loaded.get((name, number))
        if loaded is not None:
            self._loaded.move_to_end((name, number))
            return loaded
        if version is not None and name not in self._snapshot.models:
            raise NotFound(f"model {name!r} not found")
        return await self.load(name, number)

    # -- loading --------------------------------------------------------------

    async def load(self, name: str, number: int) -> LoadedModel:
        """Load a version once, however many requests ask for it at the same time.

        The load runs in its own task: a client that disconnects cancels its
        wait, not the load the other requests share.
        """
        key = (name, number)
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        task = self._loading.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load_and_keep(key))
            task.add_done_callback(_retrieve)
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _load_and_keep(self, key: Key) -> LoadedModel:
        try:
            loaded = await self._load(*key)
        except FinmaasError as exc:
            if not isinstance(exc, NotFound):
                self.errors[key] = str(exc)
            raise
        finally:
            self._loading.pop(key, None)
        self.errors.pop(key, None)
        self._loaded[key] = loaded
        await self._evict(keep=key)
        return loaded

    async def _load(self, name: str, number: int) -> LoadedModel:
        version = await asyncio.to_thread(self.registry.get_version, name, number)
        if version.status != "active":
            raise NotFound(f"model {name!r} has no active version {number}")
        predictor = await asyncio.to_thread(
            load_artifact, self.store, version, allow_pickle=self.allow_pickle
        )
        explainer = await asyncio.to_thread(Explainer, version, predictor)
        signature = version.signature
        log.info(
            "loaded %s (%s, %d bytes)", version.ref, version.artifact_format, version.artifact_size
        )
        live = LiveCounts(
            binnings_of(signature, version.reference_profile) if self.count_drift else []
        )
        return LoadedModel(
            version=version,
            signature=signature,
            predictor=predictor,
            encoder=RecordEncoder(signature),
            rule=DecisionRule.of(signature, version.metrics, version.params),
            batcher=self.batcher_factory(
                predictor.predict,
                timings=self._timings(version, "predict"),
                served=live.add if live.binnings else None,
            ),
            explainer=explainer,
            live=live,
            explain_batcher=(
                None
                if explainer.contribute is None
                else self.batcher_factory(
                    explainer.contribute, timings=self._timings(version, "explain")
                )
            ),
        )

    def _timings(self, version: ModelVersion, kind: str) -> BatchTimings | None:
        if self.metrics is None:
            return None
        return self.metrics.batch_timings(version.model, version.version, kind)

    async def unload(self, name: str, number: int | None = None) -> list[int]:
        """Unload one version, or every loaded version of ``name``; returns what was unloaded.

        Unloading the whole model also marks it unloaded on this server (every
        worker): it is not ready and serves nothing until :meth:`load_model`.
        """
        if number is None:
            await asyncio.to_thread(self.unloaded.add, name)
        keys = [k for k in self._loaded if k[0] == name and (number is None or k[1] == number)]
        for key in keys:
            loaded = self._loaded.pop(key)
            await loaded.close()
        return [k[1] for k in keys]

    async def load_model(self, name: str) -> LoadedModel:
        """Serve ``name`` again on this server (every worker) and load its production version."""
        await asyncio.to_thread(self.unloaded.discard, name)
        return await self.get(name)

    async def _evict(self, keep: Key) -> None:
        served = {(name, v) for (name, _alias), v in self._serving.items()}
        while self.memory > self.max_memory:
            victim = next((k for k in self._loaded if k != keep and k not in served), None)
            if victim is None:
                return
            log.info("evicting %s@%d to stay under the memory budget", *victim)
            await self._loaded.pop(victim).close()

    # -- watching the registry -------------------------------------------------

    async def refresh(self) -> None:
        """Read the alias snapshot and move served aliases (loading ahead when needed)."""
        snapshot = await asyncio.to_thread(self.registry.alias_snapshot)
        await asyncio.to_thread(self.unloaded.reload)
        for gone in [loaded for loaded in self._loaded if loaded[0] in self.unloaded]:
            await self._loaded.pop(gone).close()  # another worker unloaded it
        self._snapshot = snapshot
        serving = {k: v for k, v in self._serving.items() if k in snapshot.aliases}
        for key, version in snapshot.aliases.items():
            current = serving.get(key)
            if current == version:
                continue
            name = key[0]
            if (
                current is not None
                and (name, current) in self._loaded
                and (name, version) not in self._loaded
            ):
                try:
                    await self.load(name, version)
                except FinmaasError as exc:
                    log.error("%s@%s stays on version %d: %s", name, key[1], current, exc)
                    continue
            serving[key] = version
        self._serving = serving


def _retrieve(task: asyncio.Task[LoadedModel]) -> None:
    """Mark a load's failure as seen even when every waiter went away."""
    if not task.cancelled():
        task.exception()
