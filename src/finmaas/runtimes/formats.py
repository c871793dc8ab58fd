"""The model file formats finmaas knows (no numpy, no model library: the CLI's
options and the registry name them without loading a runtime)."""

from __future__ import annotations

from enum import StrEnum


class ModelFormat(StrEnum):
    ONNX = "onnx"
    LIGHTGBM = "lightgbm"
    XGBOOST_JSON = "xgboost-json"
    XGBOOST_UBJ = "xgboost-ubj"
    SKOPS = "skops"
    PICKLE = "pickle"
    """Python pickle or joblib: executes code on load; admins only, explicitly allowed."""
    LLM_ENDPOINT = "llm-endpoint"
    """Not a model file: the canonical JSON spec of an OpenAI-compatible upstream
    (``finmaas models push NAME --endpoint URL``), served by the OpenAI routes."""


FILE_FORMATS = tuple(f for f in ModelFormat if f is not ModelFormat.LLM_ENDPOINT)
"""The formats of model files (a push of a file names one of these)."""
SAFE_FORMATS = tuple(f for f in FILE_FORMATS if f is not ModelFormat.PICKLE)
