"""ONNX models, scored by ONNX Runtime on the CPU.

The graph must take one 2-D float or double tensor ``(rows, features)``, as
skl2onnx and onnxmltools export it. The score is read from one output:

* ``output`` when that option names it;
* for a classifier, the 2-D probability tensor (exported with the ZipMap
  disabled), from which a binary model gives column 1;
* for a regressor, the first float tensor, ``(n, 1)`` or ``(n,)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.errors import PredictorFailed
from finmaas.runtimes._options import check_option_names, int_option, str_option
from finmaas.runtimes.base import (
    ModelFormat,
    PredictorInfo,
    RuntimeBase,
    check_class_count,
    check_feature_count,
    runtime_errors,
    to_scores,
)
from finmaas.schema.signature import ModelSignature

_FORMAT = ModelFormat.ONNX
_INPUT_DTYPES: Mapping[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}
_FLOAT_OUTPUTS = frozenset(_INPUT_DTYPES)


@dataclass(frozen=True)
class _Loaded:
    session: Any
    input_name: str
    input_dtype: type[np.floating[Any]]
    outputs: list[str]
    info: PredictorInfo


class OnnxPredictor(RuntimeBase[_Loaded]):
    """Scores with ``onnxruntime.InferenceSession.run`` (thread-safe).

    Parameters:
        threads: intra-op threads of the session (default 1).
        output: name of the output to read, when the default choice is wrong.
    """

    def __init__(
        self, signature: ModelSignature, *, threads: int = 1, output: str | None = None
    ) -> None:
        self.signature = signature
        self.threads = threads
        self.output = output
        self._loaded: _Loaded | None = None

    @classmethod
    def from_options(
        cls, signature: ModelSignature, options: Mapping[str, object]
    ) -> OnnxPredictor:
        check_option_names(options, ("output", "threads"), _FORMAT)
        return cls(
            signature,
            threads=int_option(options, "threads", 1, minimum=1),
            output=str_option(options, "output"),
        )

    def load(self, data: bytes) -> None:
        with runtime_errors("could not load the onnx model"):
            import onnxruntime

            session_options = onnxruntime.SessionOptions()
            session_options.intra_op_num_threads = self.threads
            session_options.inter_op_num_threads = 1
            session_options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            session = onnxruntime.InferenceSession(
                data, sess_options=session_options, providers=["CPUExecutionProvider"]
            )
            inputs = session.get_inputs()
            outputs = session.get_outputs()
        if len(inputs) != 1:
            names = ", ".join(repr(i.name) for i in inputs)
            raise PredictorFailed(
                f"the onnx model has {len(inputs)} inputs ({names}); "
                "finmaas feeds one tensor of shape (rows, features)"
            )
        tensor = inputs[0]
        dtype = _INPUT_DTYPES.get(tensor.type)
        if dtype is None or len(tensor.shape) != 2:
            raise PredictorFailed(
                f"the onnx model's input {tensor.name!r} is {tensor.type} of shape "
                f"{_shape(tensor.shape)}; finmaas feeds a float or double tensor (rows, features)"
            )
        # a symbolic width cannot be checked here; check_input still checks every batch
        width = tensor.shape[1]
        n_features = width if isinstance(width, int) else len(self.signature.inputs)
        check_feature_count(self.signature, n_features, _FORMAT)
        output = _pick_output(outputs, self.signature, self.output)
        columns = output.shape[1] if len(output.shape) == 2 else None
        if isinstance(columns, int) and columns > 1:
            check_class_count(self.signature, columns, _FORMAT)
        info = PredictorInfo(_FORMAT, n_features, f"onnxruntime {onnxruntime.__version__}")
        self._loaded = _Loaded(session, tensor.name, dtype, [output.name], info)

    def _score(self, loaded: _Loaded, x: np.ndarray) -> np.ndarray:
        with runtime_errors("the onnx model failed to predict"):
            feed = {loaded.input_name: x.astype(loaded.input_dtype, copy=False)}
            (raw,) = loaded.session.run(loaded.outputs, feed)
        return to_scores(raw, self.signature, _FORMAT, x.shape[0])


def _pick_output(outputs: Sequence[Any], signature: ModelSignature, wanted: str | None) -> Any:
    names = ", ".join(f"{o.name!r} ({o.type})" for o in outputs)
    if wanted is not None:
        for output in outputs:
            if output.name == wanted:
                if output.type not in _FLOAT_OUTPUTS:
                    raise PredictorFailed(
                        f"the onnx output {wanted!r} is {output.type}, not a float tensor"
                    )
                return output
        raise PredictorFailed(f"the onnx model has no output {wanted!r}; its outputs: {names}")
    floats = [o for o in outputs if o.type in _FLOAT_OUTPUTS]
    if not floats:
        if any(o.type.startswith("seq(map(") for o in outputs):
            raise PredictorFailed(
                "the onnx model returns probabilities as a ZipMap (a list of dicts); export it "
                "with the ZipMap disabled, e.g. skl2onnx options={'zipmap': False}"
            )
        raise PredictorFailed(f"the onnx model has no float tensor output; its outputs: {names}")
    if signature.task == "regression":
        return floats[0]
    matrices = [o for o in floats if len(o.shape) == 2] or floats
    for output in matrices:
        if "prob" in output.name.lower():
            return output
    return matrices[0]


def _shape(shape: Sequence[object]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
