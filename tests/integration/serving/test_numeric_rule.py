"""One rule per field whatever the protocol: the same bad value gets the same 400 and
message through V1 ``:predict`` and ``:explain``, V2 JSON, every MLflow JSON form and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from finmaas.config import Settings
from tests.integration.serving.homes import APPLICANT, feature_tensors
from tests.integration.serving.in_process import InProcess, start_in_process

INT64 = "must be an integer from -9223372036854775808 to 9223372036854775807"
PII = "a value not shown (the field is PII)"
SLOT = "__BAD_VALUE__"
MLFLOW = {"x-finmaas-model": "credit-risk@production"}


@pytest.fixture(scope="module")
def served(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    app = start_in_process(served_home, tmp_path_factory.mktemp("numeric"))
    try:
        yield app
    finally:
        app.close()


def _with_slot(field: str) -> list[dict[str, Any]]:
    return [{**APPLICANT[0], field: SLOT}]


def _v1(app: InProcess, path: str, field: str, literal: str) -> httpx.Response:
    body = orjson.dumps({"instances": _with_slot(field)})
    return app.request("POST", path, key=app.consumer, content=_fill(body, literal), headers=_JSON)


def _v2(app: InProcess, field: str, literal: str) -> httpx.Response:
    body = orjson.dumps({"inputs": feature_tensors(_with_slot(field))})
    return app.request(
        "POST",
        "/v2/models/credit-risk/infer",
        key=app.consumer,
        content=_fill(body, literal),
        headers=_JSON,
    )


def _mlflow(form: str) -> Callable[[InProcess, str, str], httpx.Response]:
    def send(app: InProcess, field: str, literal: str) -> httpx.Response:
        records = _with_slot(field)
        columns = list(records[0])
        document: dict[str, Any] = {
            "dataframe_records": {"dataframe_records": records},
            "dataframe_split": {
                "dataframe_split": {"columns": columns, "data": [list(records[0].values())]}
            },
            "instances": {"instances": records},
            "inputs": {"inputs": {c: [records[0][c]] for c in columns}},
        }[form]
        content = _fill(orjson.dumps({**document, "params": {}}), literal)
        return app.request(
            "POST", "/invocations", key=app.consumer, content=content, headers={**_JSON, **MLFLOW}
        )

    return send


def _csv(app: InProcess, field: str, literal: str) -> httpx.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(APPLICANT[0])
    row = {**APPLICANT[0], field: "" if literal == "null" else literal.strip('"')}
    writer.writerow(row.values())
    return app.request(
        "POST",
        "/invocations",
        key=app.consumer,
        content=out.getvalue().encode(),
        headers={"content-type": "text/csv", **MLFLOW},
    )


_JSON = {"content-type": "application/json"}


def _fill(body: bytes, literal: str) -> bytes:
    return body.replace(f'"{SLOT}"'.encode(), literal.encode())


PROTOCOLS: dict[str, Callable[[InProcess, str, str], httpx.Response]] = {
    "v1-predict": lambda app, f, v: _v1(app, "/v1/models/credit-risk:predict", f, v),
    "v1-explain": lambda app, f, v: _v1(app, "/v1/models/credit-risk:explain", f, v),
    "v2-infer": _v2,
    **{f"mlflow-{form}": _mlflow(form) for form in ("dataframe_records", "dataframe_split")},
    **{f"mlflow-{form}": _mlflow(form) for form in ("instances", "inputs")},
    "mlflow-csv": _csv,
}

BAD_VALUES = [
    # field, the JSON literal sent, the message (row 0), whether CSV can say it
    ("credit_amount", "18446744073709551616", f"{INT64}, got number 1.8446744073709552e+19", True),
    ("credit_amount", "9223372036854775808", f"{INT64}, got number 9223372036854775808", True),
    ("credit_amount", "1" + "0" * 40, f"{INT64}, got number 1e+40", True),
    ("credit_amount", "1e400", "must be a finite number, got number 1e400", True),
    ("credit_amount", "-1e400", "must be a finite number, got number -1e400", True),
    ("credit_amount", "1" + "0" * 400, f"must be a finite number, got number 1{'0' * 62}…", True),
    ("credit_amount", "3.5", "must be an integer, got number 3.5", True),
    ("credit_amount", "-1", "must be ≥ 0, got -1", True),
    ("credit_amount", '"abc"', "must be a number, got string 'abc'", True),
    ("credit_amount", "true", "must be a number, got true", False),
    ("credit_amount", "{}", "must be a number, got an object", False),
    ("age_in_years", "18446744073709551616", f"{INT64}, got {PII}", True),
    ("age_in_years", "1e400", f"must be a finite number, got {PII}", True),
    ("purpose", "5", "must be one of its categories (a string), got number 5", False),
    ("purpose", '"boat"', "must be one of its 10 categories, got 'boat'", True),
]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize(
    ("field", "literal", "rule", "in_csv"),
    [pytest.param(*case, id=f"{case[0]}={case[1][:24]}") for case in BAD_VALUES],
)
def test_the_same_bad_value_gets_the_same_answer_in_every_protocol(
    served: InProcess, protocol: str, field: str, literal: str, rule: str, in_csv: bool
) -> None:
    if protocol == "mlflow-csv" and not in_csv:
        pytest.skip("a CSV cell is text: it cannot carry this JSON type")
    response = PROTOCOLS[protocol](served, field, literal)
    message = f"row 0: field {field!r} {rule}"
    assert response.status_code == 400, response.text
    if protocol.startswith("mlflow"):
        assert response.json() == {"error_code": "BAD_REQUEST", "message": message}
    else:
        assert response.json() == {"error": message}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_null_for_a_required_field_is_refused_alike(served: InProcess, protocol: str) -> None:
    response = PROTOCOLS[protocol](served, "credit_amount", "null")
    message = "row 0: null is not allowed for field 'credit_amount'"
    assert response.status_code == 400, response.text
    assert message in response.text


@pytest.mark.parametrize(
    ("literal", "echoed"),
    [
        ("9223372036854775807", 9223372036854774784),  # the nearest double inside int64
        ("9.2233720368547748e18", 9223372036854774784),
        ("1e3", 1000),
        ("3.0", 3),
    ],
)
def test_accepted_extremes_are_answered_and_echoed(
    served: InProcess, literal: str, echoed: int
) -> None:
    body = _fill(orjson.dumps({"instances": _with_slot("credit_amount")}), literal)
    explained = served.request(
        "POST",
        "/v1/models/credit-risk:explain",
        key=served.consumer,
        params={"counterfactual": "true", "reasons": "20"},
        content=body,
        headers=_JSON,
    )
    assert explained.status_code == 200, explained.text
    reasons = explained.json()["predictions"][0]["explanation"]["reasons"]
    sent = {reason["feature"]: reason["value"] for reason in reasons}
    assert sent["credit_amount"] == echoed
    whole = literal.isdigit()  # V2 refuses 3.0 in an INT64 tensor: the datatype's rule
    for protocol in ("v1-predict", "mlflow-inputs", "mlflow-csv", *(["v2-infer"] * whole)):
        response = PROTOCOLS[protocol](served, "credit_amount", literal)
        assert response.status_code == 200, (protocol, response.text)


def test_v2_checks_the_declared_datatype_after_the_field_rule(served: InProcess) -> None:
    tensors = feature_tensors(APPLICANT[:1])
    for tensor in tensors:
        if tensor["name"] == "credit_amount":
            tensor["data"] = [2.5e9]  # a valid value of the field, but no INT64
    response = served.request(
        "POST", "/v2/models/credit-risk/infer", key=served.consumer, json={"inputs": tensors}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "input 'credit_amount': 2500000000.0 is not a valid INT64"}


def test_a_number_beyond_fp32_is_no_valid_fp32(served: InProcess) -> None:
    tensors = feature_tensors(APPLICANT[:1])
    for tensor in tensors:
        if tensor["name"] == "credit_amount":
            tensor["datatype"], tensor["data"] = "FP32", [1e300]
    response = served.request(
        "POST", "/v2/models/credit-risk/infer", key=served.consumer, json={"inputs": tensors}
    )
    assert response.status_code == 400
    assert response.json() == {"error": f"row 0: field 'credit_amount' {INT64}, got number 1e+300"}
