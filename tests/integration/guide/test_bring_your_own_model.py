"""docs/bring-your-own-model.md, run block by block as a newcomer would: each model
trained the usual way for its library, registered with its class order explicit,
approved by a validator's key over a real server, promoted by an admin and called."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import finmaas
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.errors import Invalid
from tests.integration.serving.live import start_server, stop_server

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "bring-your-own-model.md"
BLOCK = re.compile(
    r"<!-- run: (?P<name>[\w-]+) -->\n```(?P<language>python|bash)\n(?P<code>.*?)```", re.S
)
TRAINING = {  # block: the model it registers, and the line it ends with
    "lightgbm": "credit-lgbm",
    "xgboost": "credit-xgb",
    "pipeline": "credit-pipeline",
    "network": "credit-net",
}
KEYS = ("DANA_KEY", "VIC_KEY", "ADA_KEY", "APP_KEY")
"""The secrets the guide's ``keys`` block prints, in its order."""

pytestmark = pytest.mark.slow


def _blocks() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for match in BLOCK.finditer(GUIDE.read_text()):
        assert match["name"] not in found, f"two blocks named {match['name']!r}"
        found[match["name"]] = (match["language"], match["code"])
    return found


def _run(folder: Path, env: dict[str, str], name: str, **extra: str) -> str:
    """Run the guide's block ``name`` in ``folder``; its output, or fail showing it."""
    language, code = _blocks()[name]
    if language == "python":
        script = folder / f"guide_{name}.py"  # not lightgbm.py, which would shadow lightgbm
        script.write_text(code)
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(
        command,
        cwd=folder,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"block {name!r} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_block_of_the_guide_is_run_here() -> None:
    assert set(_blocks()) == {"data", "keys", *TRAINING, "push-network", "approve", "call"}


def test_the_guide_from_training_to_a_served_prediction(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMAAS_")}
    env["FINMAAS_HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    _run(tmp_path, env, "data")
    assert len(pd.read_csv(tmp_path / "applications.csv")) == 1000
    secrets = re.findall(r"^fmk_\S+$", _run(tmp_path, env, "keys"), re.M)
    assert len(secrets) == len(KEYS)
    env.update(zip(KEYS, secrets, strict=True))

    server = start_server(Settings(home=home), auth=True)
    try:
        env["FINMAAS_SERVER"] = server.url
        for block, model in TRAINING.items():
            out = _run(tmp_path, env, block)
            if block != "network":
                assert re.fullmatch(rf"{model}@1 AUC on the sample: 0\.\d+\n", out), out
        pushed = _run(tmp_path, env, "push-network")
        assert pushed.startswith("published credit-net@1 (onnx, "), pushed
        assert "AUC of P(bad) on the labelled reference: " in pushed

        for model in TRAINING.values():
            steps = _run(tmp_path, env, "approve", NAME=model)
            assert f"approved {model}@1 by key:" in steps, steps
            assert steps.endswith(f"{model}@production → version 1\n"), steps
            called = _run(tmp_path, env, "call", NAME=model)
            match = re.fullmatch(
                r"1 \{'probability': (?P<p>[0-9.e-]+), 'label': '(good|bad)'.*\}\n", called
            )
            assert match is not None, called
            assert 0.0 < float(match["p"]) < 1.0
    finally:
        stop_server(server)
    for secret in secrets:  # printed once by 'keys create', never again
        assert secret not in server.log.read_text()


def test_a_pipeline_fitted_on_the_labels_scores_good_and_declaring_bad_is_refused(
    tmp_path: Path,
) -> None:
    """The guide's note: fitted on the labels, scikit-learn sorts them and the pipeline
    returns P(good); declaring 'bad' positive is refused on the labelled sample."""
    data = load_german_credit()
    X = data.drop(columns=[GERMAN_CREDIT_TARGET])
    text = list(X.select_dtypes(exclude="number").columns)
    numbers = list(X.select_dtypes(include="number").columns)
    model = make_pipeline(
        ColumnTransformer(
            [
                ("text", OneHotEncoder(handle_unknown="ignore"), text),
                ("numbers", StandardScaler(), numbers),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    model.fit(X, data[GERMAN_CREDIT_TARGET])
    assert list(model.classes_) == ["bad", "good"]
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(Invalid, match=r"ranks 'bad' below chance \(AUC 0\.\d+, under 0\.5\)"):
        finmaas.register(
            "labels",
            model,
            X,
            classes=["good", "bad"],
            positive_class="bad",
            y=data[GERMAN_CREDIT_TARGET],
            settings=settings,
        )
    version = finmaas.register(
        "labels",
        model,
        X,
        classes=["bad", "good"],
        positive_class="good",
        y=data[GERMAN_CREDIT_TARGET],
        settings=settings,
    )
    assert version.metrics["reference_auc"] > 0.5
