"""The one inference core every protocol calls: pick the version, batch, score."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from finmaas.errors import Invalid
from finmaas.serving.pool import LoadedModel, ModelPool


@dataclass(frozen=True)
class Selector:
    """Which version a request wants: a number, an alias, or ``production``."""

    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, version: str | None, alias: str | None) -> Selector:
        if version is not None and alias is not None:
            raise Invalid("give either 'version' or 'alias', not both")
        if version is not None:
            if not (version.isascii() and version.isdigit()) or not 0 < int(version) < 2**31:
                raise Invalid(f"version must be a positive integer, got {version[:40]!r}")
            return cls(version=int(version))
        return cls(alias=alias)


class DataPlane:
    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    async def model(self, name: str, selector: Selector) -> LoadedModel:
        return await self.pool.get(name, version=selector.version, alias=selector.alias)

    async def score(self, loaded: LoadedModel, x: np.ndarray) -> np.ndarray:
        return await loaded.batcher.submit(x)

    async def score_and_explain(
        self, loaded: LoadedModel, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and raw contributions, each batched with other requests', side by side."""
        batcher = loaded.explain_batcher
        if batcher is None:
            loaded.explainer.check()  # raises the 501 that says why
            raise AssertionError("unreachable")
        scores, contributions = await asyncio.gather(loaded.batcher.submit(x), batcher.submit(x))
        return scores, contributions
