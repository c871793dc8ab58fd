"""Parents for the optimisation tests: German credit split into training rows and a
held-out file, a two-layer credit network (ONNX) and a LightGBM ensemble trained on
the training rows, each trained once per session."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd

from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.schema import ModelSignature, encode_frame
from finmaas.training.credit import LIGHTGBM_PARAMS
from finmaas.training.neural import Layout, NetworkSettings, to_onnx, train_network

TREES = 150


@dataclass(frozen=True)
class German:
    signature: ModelSignature
    train: pd.DataFrame
    held: pd.DataFrame
    x_train: np.ndarray
    y_train: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray


@cache
def german() -> German:
    signature = german_credit_signature()
    frame = load_german_credit()
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    rng = np.random.default_rng(11)
    train_rows, held_rows = [], []
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == label))
        cut = round(len(rows) * 0.6)
        train_rows.append(rows[:cut])
        held_rows.append(rows[cut:])
    train = frame.iloc[np.sort(np.concatenate(train_rows))].reset_index(drop=True)
    held = frame.iloc[np.sort(np.concatenate(held_rows))].reset_index(drop=True)
    names = list(signature.feature_names)

    def encoded(part: pd.DataFrame) -> np.ndarray:
        return np.asarray(encode_frame(signature, part[names]), dtype=np.float64)

    return German(
        signature,
        train,
        held,
        encoded(train),
        (train[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int),
        encoded(held),
        (held[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int),
    )


@cache
def network_model() -> onnx.ModelProto:
    """Two hidden layers of 32 units."""
    data = german()
    network = train_network(
        data.x_train,
        data.y_train,
        Layout.of(data.signature),
        NetworkSettings(hidden=32, depth=2, max_epochs=60),
        seed=3,
    )
    return to_onnx(network, data.x_train.shape[1])


@cache
def lightgbm_model() -> lgb.Booster:
    data = german()
    categorical = [i for i, f in enumerate(data.signature.inputs) if f.dtype == "category"]
    return lgb.train(
        {**LIGHTGBM_PARAMS, "seed": 3, "learning_rate": 0.2},
        lgb.Dataset(data.x_train, data.y_train, categorical_feature=categorical),
        num_boost_round=TREES,
    )
