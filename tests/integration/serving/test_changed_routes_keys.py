"""The data-plane routes issue 18 changed, with a key of another tenant and of each lower
role: MLflow's ``/invocations`` with a CSV body, and the V2 repository's unload and load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from finmaas.config import Settings
from tests.integration.serving.in_process import InProcess, start_in_process

CSV = {"content-type": "text/csv", "x-finmaas-model": "credit-risk"}


@pytest.fixture(scope="module")
def served(served_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    app = start_in_process(served_home, tmp_path_factory.mktemp("keys"))
    try:
        yield app
    finally:
        app.close()


def test_a_csv_body_from_a_key_of_another_tenant_finds_no_model(served: InProcess) -> None:
    answer = served.request(
        "POST", "/invocations", key=served.others["stranger"], headers=CSV, content=b"x\n1\n"
    )
    assert (answer.status_code, answer.json()) == (
        404,
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "model 'credit-risk' not found"},
    )


def test_a_csv_body_from_an_auditor_is_refused(served: InProcess) -> None:
    answer = served.request(
        "POST", "/invocations", key=served.others["auditor"], headers=CSV, content=b"x\n1\n"
    )
    assert (answer.status_code, answer.json()["message"]) == (
        403,
        "this key may not predict model 'credit-risk'",
    )


@pytest.mark.parametrize("verb", ["unload", "load"])
@pytest.mark.parametrize("key", ["developer", "validator", "auditor", "stranger"])
def test_only_an_admin_unloads_or_loads(served: InProcess, key: str, verb: str) -> None:
    role = "consumer" if key == "stranger" else key
    answer = served.request(
        "POST", f"/v2/repository/models/credit-risk/{verb}", key=served.others[key]
    )
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": f"this needs the role admin; the key's role is {role}"},
    )
