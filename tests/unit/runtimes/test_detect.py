from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest

from finmaas.errors import FormatMismatch
from finmaas.runtimes import SAFE_FORMATS, ModelFormat, check_format, detect_format
from tests.unit.runtimes.cases import Case, logistic_pipeline, onnx_regression_bytes
from tests.unit.runtimes.conftest import CASE_NAMES

UNSUPPORTED = (
    "file 'x.bin' is not in a supported format (onnx, lightgbm, xgboost-json, xgboost-ubj, "
    "skops); pickle/joblib needs an admin and --allow-pickle"
)


@pytest.mark.parametrize("runtime_case", CASE_NAMES, indirect=True)
def test_detects_every_runtime_format(runtime_case: Case) -> None:
    assert detect_format(runtime_case.data) is runtime_case.fmt
    assert check_format(runtime_case.data, None, filename="m") is runtime_case.fmt
    assert check_format(runtime_case.data, runtime_case.fmt, filename="m") is runtime_case.fmt


def test_safe_formats_are_all_but_pickle() -> None:
    assert SAFE_FORMATS == (
        ModelFormat.ONNX,
        ModelFormat.LIGHTGBM,
        ModelFormat.XGBOOST_JSON,
        ModelFormat.XGBOOST_UBJ,
        ModelFormat.SKOPS,
    )


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_by_protocol_header(protocol: int) -> None:
    assert detect_format(pickle.dumps({"a": 1}, protocol=protocol)) is ModelFormat.PICKLE


@pytest.mark.parametrize(
    "compress", [0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]
)
def test_joblib_files_are_pickle(tmp_path: Path, compress: object) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(logistic_pipeline(), path, compress=compress)
    assert detect_format(path.read_bytes()) is ModelFormat.PICKLE


@pytest.mark.parametrize(
    "compress",
    [zlib.compress, gzip.compress, bz2.compress, lzma.compress],
    ids=["zlib", "gzip", "bz2", "xz"],
)
def test_compressed_data_that_is_not_a_pickle_is_unknown(compress: object) -> None:
    assert callable(compress)
    assert detect_format(compress(onnx_regression_bytes())) is None


def test_truncated_compressed_pickle_is_not_a_safe_format() -> None:
    assert detect_format(zlib.compress(pickle.dumps(list(range(100))))[:2]) is None
    assert detect_format(b"\x1f\x8b" + b"\x00" * 30) is None


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _onnx_without_nodes() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([], "empty", [x], [x])
    return bytes(helper.make_model(graph).SerializeToString())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello world\n", id="text"),
        pytest.param(b"tree\nnum_class=1\n", id="lightgbm-without-version"),
        pytest.param(b'{"booster": {}}', id="json-without-learner"),
        pytest.param(b'{"learner": 1}', id="json-learner-not-object"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b"{i\x07versionX", id="ubj-other-key"),
        pytest.param(_zip({"data.pkl": b"\x80\x04."}), id="zip-without-schema"),
        pytest.param(b"PK\x03\x04broken", id="broken-zip"),
        pytest.param(b"\x08\x07", id="protobuf-without-graph"),
        pytest.param(_onnx_without_nodes(), id="onnx-without-nodes"),
        pytest.param(b"\x80\x01junk", id="pickle-protocol-1-header"),
    ],
)
def test_unknown_bytes(data: bytes) -> None:
    assert detect_format(data) is None


def test_random_bytes_are_never_a_safe_format() -> None:
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 8, 64, 1000] * 50:
        data = rng.bytes(size)
        assert detect_format(data) in (None, ModelFormat.PICKLE), data


def test_check_format_names_the_claim_and_the_detected_format(lightgbm_binary: Case) -> None:
    with pytest.raises(FormatMismatch) as excinfo:
        check_format(lightgbm_binary.data, ModelFormat.ONNX, filename="model.txt")
    assert (
        str(excinfo.value)
        == "file 'model.txt' is not a valid onnx artifact: it looks like lightgbm"
    )


def test_check_format_tells_json_from_ubj(xgboost_ubj_binary: Case) -> None:
    with pytest.raises(FormatMismatch) as excinfo:
        check_format(xgboost_ubj_binary.data, ModelFormat.XGBOOST_JSON, filename="m.json")
    assert str(excinfo.value) == (
        "file 'm.json' is not a valid xgboost-json artifact: it looks like xgboost-ubj"
    )


def test_check_format_refuses_pickle_claimed_as_skops() -> None:
    with pytest.raises(FormatMismatch) as excinfo:
        check_format(pickle.dumps([1]), ModelFormat.SKOPS, filename="model.pkl")
    assert (
        str(excinfo.value) == "file 'model.pkl' is not a valid skops artifact: it looks like pickle"
    )


def test_check_format_accepts_pickle_claimed_as_pickle() -> None:
    assert (
        check_format(pickle.dumps([1]), ModelFormat.PICKLE, filename="m.pkl") is ModelFormat.PICKLE
    )


@pytest.mark.parametrize("claimed", [None, ModelFormat.ONNX])
def test_check_format_unsupported(claimed: ModelFormat | None) -> None:
    with pytest.raises(FormatMismatch) as excinfo:
        check_format(b"\x00\x01garbage", claimed, filename="x.bin")
    assert str(excinfo.value) == UNSUPPORTED


def test_check_format_empty_file() -> None:
    with pytest.raises(FormatMismatch) as excinfo:
        check_format(b"", ModelFormat.ONNX, filename="x.bin")
    assert str(excinfo.value) == "file 'x.bin' is empty"
