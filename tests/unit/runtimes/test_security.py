"""Model files are data: nothing in an artifact runs unless an admin allowed pickle.

Each payload here really does run code when loaded naively (a ``*_is_live``
test proves it), so the tests that refuse it are not vacuous.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pathlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio

from finmaas.errors import Forbidden, FormatMismatch
from finmaas.runtimes import ModelFormat, check_format, create_predictor, detect_format
from finmaas.runtimes import load_predictor as load
from finmaas.runtimes.pickle import PicklePredictor
from finmaas.runtimes.skops import SkopsPredictor, is_trusted_type
from tests.unit.runtimes.cases import logistic_pipeline, make_signature, sample_batch

PICKLE_REFUSED = (
    "pickle artifacts execute code when loaded; refused (an admin must push it with "
    "--allow-pickle and the deployment must set allow_pickle)"
)
BINARY = make_signature("binary")


class _WritesMarker:
    """Unpickling this calls ``Path.write_text(marker, ...)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.write_text, (self.marker, "pwned"))


class Evil:
    """A custom type whose construction from a skops file writes a marker."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("pwned")
        self.__dict__.update(state)


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(_WritesMarker(marker), protocol=5)


def test_evil_pickle_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pickle.loads(evil_pickle(marker))
    assert marker.read_text() == "pwned"


def test_detection_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = evil_pickle(marker)
    assert detect_format(data) is ModelFormat.PICKLE
    assert check_format(data, None, filename="model.pkl") is ModelFormat.PICKLE
    with pytest.raises(FormatMismatch):
        check_format(data, ModelFormat.SKOPS, filename="model.pkl")
    assert not marker.exists()


def test_pickle_is_refused_before_reading_the_bytes(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = evil_pickle(marker)
    for predictor in (
        PicklePredictor(BINARY),
        create_predictor(ModelFormat.PICKLE, BINARY),
        create_predictor(ModelFormat.PICKLE, BINARY, allow_pickle=False),
    ):
        with pytest.raises(Forbidden) as excinfo:
            predictor.load(data)
        assert str(excinfo.value) == PICKLE_REFUSED
    with pytest.raises(Forbidden):
        load(data, ModelFormat.PICKLE, BINARY)
    assert not marker.exists()


def test_compressed_evil_joblib_is_detected_but_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.joblib"
    joblib.dump(_WritesMarker(marker), path, compress=3)
    data = path.read_bytes()
    assert detect_format(data) is ModelFormat.PICKLE
    with pytest.raises(Forbidden):
        load(data, ModelFormat.PICKLE, BINARY)
    with pytest.raises(FormatMismatch) as excinfo:
        load(data, ModelFormat.PICKLE, BINARY, allow_pickle=True)
    assert str(excinfo.value) == (
        "the pickle is a compressed joblib file, which finmaas cannot read (joblib is not a "
        "dependency); save the model with pickle.dump(model, file, protocol=5)"
    )
    assert not marker.exists()


def test_joblib_with_numpy_arrays_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(logistic_pipeline(), path)
    with pytest.raises(FormatMismatch) as excinfo:
        load(path.read_bytes(), ModelFormat.PICKLE, BINARY, allow_pickle=True)
    assert str(excinfo.value) == (
        "the pickle is a joblib file that keeps numpy arrays outside the pickle stream, which "
        "finmaas cannot read (joblib is not a dependency); save the model with "
        "pickle.dump(model, file, protocol=5)"
    )


def test_allowed_pickle_of_an_sklearn_model_loads() -> None:
    model = logistic_pipeline()
    predictor = load(pickle.dumps(model), ModelFormat.PICKLE, BINARY, allow_pickle=True)
    x = sample_batch()
    np.testing.assert_allclose(predictor.predict(x), model.predict_proba(x)[:, 1], rtol=1e-12)
    assert predictor.info.format is ModelFormat.PICKLE


# --- skops -----------------------------------------------------------------------------


def skops_with_evil(marker: Path) -> bytes:
    model = logistic_pipeline()
    model.evil_ = Evil(str(marker))
    return bytes(sio.dumps(model))


def test_evil_skops_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = skops_with_evil(marker)
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert marker.read_text() == "pwned"


def test_skops_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = skops_with_evil(marker)
    assert check_format(data, ModelFormat.SKOPS, filename="m.skops") is ModelFormat.SKOPS
    with pytest.raises(Forbidden) as excinfo:
        load(data, ModelFormat.SKOPS, BINARY)
    assert str(excinfo.value) == (
        f"skops artifact contains untrusted types: {Evil.__module__}.Evil"
    )
    assert not marker.exists()


def test_skops_refusal_lists_every_untrusted_type_sorted(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = logistic_pipeline()
    model.evil_ = Evil(str(tmp_path / "marker"))
    model.steps.insert(0, ("clip", FunctionTransformer(np.clip)))
    with pytest.raises(Forbidden) as excinfo:
        SkopsPredictor(BINARY).load(bytes(sio.dumps(model)))
    assert str(excinfo.value) == (
        f"skops artifact contains untrusted types: numpy.clip, {Evil.__module__}.Evil"
    )
    assert not (tmp_path / "marker").exists()


def _script_runner_model(marker: Path) -> Any:
    """A pipeline whose transform runs a Python script, via a function defined in sklearn."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils._testing import assert_run_python_script_without_output

    model = make_pipeline(FunctionTransformer(), logistic_pipeline())
    model.fit(sample_batch(), np.arange(40) % 2)
    script = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pwned')"
    model.steps[0][1].func = functools.partial(assert_run_python_script_without_output, script)
    return model


def test_sklearn_function_payload_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = bytes(sio.dumps(_script_runner_model(marker)))
    model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    with pytest.raises(TypeError):
        model.predict(sample_batch())
    assert marker.read_text() == "pwned"


def test_sklearn_functions_are_not_trusted_by_prefix(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = bytes(sio.dumps(_script_runner_model(marker)))
    with pytest.raises(Forbidden) as excinfo:
        load(data, ModelFormat.SKOPS, BINARY)
    assert str(excinfo.value) == (
        "skops artifact contains untrusted types: "
        "sklearn.utils._testing.assert_run_python_script_without_output"
    )
    assert not marker.exists()


def _move_function(data: bytes, function: Any, module: str) -> bytes:
    """Name ``function`` in a skops file as an attribute of ``module``, as a crafted file can."""
    origin = (function.__module__, function.__name__)
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (node.get("__module__"), node.get("__class__")) == origin:
                node["__module__"] = module
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            content = json.dumps(schema) if item == "schema.json" else source.read(item)
            target.writestr(item, content)
    return out.getvalue()


def test_a_module_import_is_not_an_sklearn_type() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(), logistic_pipeline())
    model.fit(sample_batch(), np.arange(40) % 2)
    model.steps[0][1].func = os.remove
    data = _move_function(bytes(sio.dumps(model)), os.remove, "sklearn.datasets._rcv1")
    assert sio.get_untrusted_types(data=data) == ["sklearn.datasets._rcv1.remove"]
    with pytest.raises(Forbidden) as excinfo:
        load(data, ModelFormat.SKOPS, BINARY)
    assert str(excinfo.value) == (
        "skops artifact contains untrusted types: sklearn.datasets._rcv1.remove"
    )


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.neighbors._kd_tree.KDTree", True),
        ("sklearn.utils._bunch.Bunch", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("functools.partial", True),
        ("sklearn.utils.validation.check_array", True),
        ("sklearn.utils.validation.column_or_1d", False),
        ("sklearn.utils._testing.TempMemmap", False),
        ("sklearn.datasets._base.makedirs", False),
        ("sklearn.no_such_module.Thing", False),
        ("sklearn.tree._tree.NoSuchThing", False),
        ("sklearn.Thing", False),
        ("sklearnx.tree.Tree", False),
        ("builtins.eval", False),
        ("posix.system", False),
        ("numpy.clip", False),
    ],
)
def test_allow_list(name: str, trusted: bool) -> None:
    assert is_trusted_type(name) is trusted


def test_skops_random_forest_loads() -> None:
    from sklearn.ensemble import RandomForestClassifier

    x = sample_batch(120)
    model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
    model.fit(x, (x[:, 0] > 0).astype(int))
    assert sio.get_untrusted_types(data=sio.dumps(model)) == ["sklearn.tree._tree.Tree"]
    predictor = load(bytes(sio.dumps(model)), ModelFormat.SKOPS, BINARY)
    np.testing.assert_array_equal(predictor.predict(x), model.predict_proba(x)[:, 1])
