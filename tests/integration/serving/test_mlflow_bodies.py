"""MLflow scoring bodies as MLflow documents them: ``params`` beside every JSON form, and
``text/csv`` (``curl -H 'Content-Type: text/csv' --data-binary @data.csv``), in process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from finmaas.config import Settings
from tests.integration.serving.homes import APPLICANT
from tests.integration.serving.in_process import InProcess, start_in_process

MODEL = {"x-finmaas-model": "credit-risk@production"}
CSV = {"content-type": "text/csv", **MODEL}
FRAME = pd.DataFrame(APPLICANT[:3])
COLUMNS = list(FRAME.columns)


@pytest.fixture(scope="module")
def served(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    app = start_in_process(served_home, tmp_path_factory.mktemp("mlflow"), max_request_rows=5)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="module")
def expected(served: InProcess) -> list[dict[str, Any]]:
    response = served.request(
        "POST",
        "/v1/models/credit-risk:predict",
        key=served.consumer,
        json={"instances": APPLICANT[:3]},
    )
    return list(response.json()["predictions"])


def _invoke(served: InProcess, **kwargs: Any) -> Any:
    headers = {**MODEL, **kwargs.pop("headers", {})}
    return served.request("POST", "/invocations", key=served.consumer, headers=headers, **kwargs)


DOCUMENTED = {
    "dataframe_split": {"columns": COLUMNS, "data": FRAME.to_numpy().tolist()},
    "dataframe_records": APPLICANT[:3],
    "instances": APPLICANT[:3],
    "inputs": {c: FRAME[c].tolist() for c in COLUMNS},
}


@pytest.mark.parametrize("form", list(DOCUMENTED))
@pytest.mark.parametrize("params", [None, {}], ids=["params-null", "params-empty"])
def test_every_documented_form_takes_params(
    served: InProcess, expected: list[dict[str, Any]], form: str, params: object
) -> None:
    response = _invoke(served, json={form: DOCUMENTED[form], "params": params})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"top_k": 2}, "unknown param 'top_k': this model takes no params"),
        ({"b": 1, "a": "x"}, "unknown params 'a', 'b': this model takes no params"),
        (
            {f"p{i}": i for i in range(7)},
            "unknown params 'p0', 'p1', 'p2', 'p3', 'p4' and 2 more: this model takes no params",
        ),
        ([1, 2], "'params' must be an object of inference params"),
        ("top_k=2", "'params' must be an object of inference params"),
    ],
)
def test_params_the_model_does_not_take_are_refused_by_name(
    served: InProcess, params: object, message: str
) -> None:
    response = _invoke(
        served, json={"dataframe_split": DOCUMENTED["dataframe_split"], "params": params}
    )
    assert response.status_code == 400
    assert response.json() == {"error_code": "BAD_REQUEST", "message": message}


@pytest.mark.parametrize(
    "content_type", ["text/csv", "text/csv; charset=utf-8", "Text/CSV;charset=UTF-8"]
)
def test_csv_written_by_pandas_scores_like_json(
    served: InProcess, expected: list[dict[str, Any]], content_type: str
) -> None:
    data = FRAME.to_csv(index=False).encode()
    response = _invoke(served, content=data, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_csv_columns_may_come_in_any_order_with_a_bom_and_crlf(
    served: InProcess, expected: list[dict[str, Any]]
) -> None:
    data = FRAME[COLUMNS[::-1]].to_csv(index=False, lineterminator="\r\n")
    response = _invoke(served, content=("\ufeff" + data).encode(), headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _changed(column: str, value: object, row: int = 1) -> bytes:
    frame = FRAME.astype(object)
    frame.loc[row, column] = value
    return _csv(frame)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            FRAME.to_csv().encode(),
            "CSV header: column 0 has no name "
            "(an index? write the frame with DataFrame.to_csv(index=False))",
            id="pandas-index",
        ),
        pytest.param(
            _csv(FRAME.drop(columns=["credit_amount"])),
            "CSV header: missing column 'credit_amount'",
            id="missing-column",
        ),
        pytest.param(
            _csv(FRAME.assign(bonus=1)), "CSV header: unknown column 'bonus'", id="stray-column"
        ),
        pytest.param(
            b"credit_amount,credit_amount\n1,2\n",
            "CSV header: column 'credit_amount' appears twice",
            id="repeated-column",
        ),
        pytest.param(
            _changed("credit_amount", "12k"),
            "row 1: field 'credit_amount' must be a number, got string '12k'",
            id="bad-number",
        ),
        pytest.param(
            _changed("credit_amount", "18446744073709551616"),
            "row 1: field 'credit_amount' must be an integer from -9223372036854775808 to "
            "9223372036854775807, got number 1.8446744073709552e+19",
            id="beyond-int64",
        ),
        pytest.param(
            _changed("duration_in_month", ""),
            "row 1: null is not allowed for field 'duration_in_month'",
            id="empty-cell",
        ),
        pytest.param(
            _changed("age_in_years", "old", row=2),
            "row 2: field 'age_in_years' must be a number, got a value not shown (the field is PII)",
            id="pii-not-echoed",
        ),
        pytest.param(
            _csv(FRAME) + b"1,2\n",
            f"CSV row 3 has 2 values; the header has {len(COLUMNS)} columns",
            id="short-row",
        ),
        pytest.param(
            _csv(FRAME.head(0)), "the CSV body has a header but no rows", id="header-only"
        ),
        pytest.param(b"", "request body is empty; expected CSV with a header row", id="empty"),
        pytest.param(
            _csv(pd.concat([FRAME, FRAME])),
            "request has 6 rows; the limit is 5",
            id="too-many-rows",
        ),
        pytest.param(
            _csv(FRAME).replace(b"credit_amount", b"cr\xe9dit"),
            "CSV body is not UTF-8 text (an invalid byte at offset "
            f"{_csv(FRAME).index(b'credit_amount') + 2})",
            id="latin-1-bytes",
        ),
        pytest.param(
            _changed("purpose", "x" * 140_000),
            "malformed CSV at line 3: field larger than field limit (131072)",
            id="huge-cell",
        ),
    ],
)
def test_bad_csv_bodies(served: InProcess, content: bytes, message: str) -> None:
    response = _invoke(served, content=content, headers=CSV)
    assert response.status_code == 400, response.text
    assert response.json() == {"error_code": "BAD_REQUEST", "message": message}


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/csv; charset=latin-1", "charset 'latin-1' is not supported; send UTF-8 CSV"),
        (
            "text/csv; header=present",
            "content type parameter 'header' is not supported; send text/csv",
        ),
        (
            "text/plain",
            "content type 'text/plain' is not supported; send application/json, or text/csv",
        ),
    ],
)
def test_other_content_types_are_415(served: InProcess, content_type: str, message: str) -> None:
    response = _invoke(served, content=_csv(FRAME), headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.json() == {"error_code": "BAD_REQUEST", "message": message}
