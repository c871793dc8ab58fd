"""Run the real CLI in process, against the suite's database backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.schema import Feature, ModelSignature


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]

SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
    inputs=(
        Feature(name="income", dtype="float", min=0),
        Feature(name="purpose", dtype="category", categories=("car", "house", "tv")),
    ),
)


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Cli:
    base = ["--home", str(settings.home), "--database-url", settings.resolved_database_url]

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([*base, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _train(seed: int, rounds: int) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.gamma(2.0, 1000.0, 400), rng.integers(0, 3, 400)]).astype(float)
    y = (x[:, 0] / 4000 + 0.3 * x[:, 1] + rng.normal(0, 0.5, 400) > 0.8).astype(int)
    data = lgb.Dataset(x, y, categorical_feature=[1], free_raw_data=False)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4, "seed": seed, "num_threads": 1}
    return lgb.train(params, data, num_boost_round=rounds)


@pytest.fixture
def model_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "files"
    folder.mkdir()
    files = {
        "v1": folder / "model-v1.txt",
        "v2": folder / "model-v2.txt",
        "signature": folder / "signature.json",
        "reference": folder / "reference.csv",
    }
    files["v1"].write_text(_train(1, 5).model_to_string())
    files["v2"].write_text(_train(2, 20).model_to_string())
    files["signature"].write_bytes(SIGNATURE.to_json())
    files["reference"].write_text(
        "income,purpose\n"
        + "\n".join(f"{1000 * i},{('car', 'house', 'tv')[i % 3]}" for i in range(30))
    )
    return files


def artifact_files(settings: Settings) -> list[Path]:
    root = settings.resolved_artifacts_dir / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def as_json(text: str) -> object:
    return json.loads(text)
