"""``finmaas models …`` end to end: real files, real database, exact messages."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from finmaas.config import Settings
from finmaas.registry import Registry
from tests.approvals import approve
from tests.integration.cli.conftest import Cli, artifact_files, as_json


def _push(cli: Cli, files: dict[str, Path], which: str = "v1", *extra: str, name: str = "credit"):
    return cli(
        "models", "push", name, str(files[which]), "--signature", str(files["signature"]), *extra
    )


def test_push_list_show(cli: Cli, model_files: dict[str, Path], settings: Settings) -> None:
    pushed = _push(
        cli,
        model_files,
        "v1",
        "--metric",
        "auc=0.71",
        "--tag",
        "team=risk",
        "--description",
        "PD model",
        "--owner",
        "risk-team",
        "--reference",
        str(model_files["reference"]),
    )
    assert pushed.code == 0, pushed.err
    assert pushed.out.startswith("published credit@1 (lightgbm, ")
    assert len(artifact_files(settings)) == 1

    listed = cli("models", "list", "--json")
    assert listed.code == 0
    [model] = as_json(listed.out)  # type: ignore[misc]
    assert (model["name"], model["task"], model["latest_version"], model["aliases"]) == (
        "credit",
        "binary",
        1,
        {},
    )
    assert (model["description"], model["owner"]) == ("PD model", "risk-team")

    shown = cli("models", "show", "credit", "--version", "1", "--json")
    version = as_json(shown.out)
    assert version["metrics"] == {"auc": 0.71}  # type: ignore[index]
    assert version["tags"] == {"team": "risk"}  # type: ignore[index]
    assert version["lineage"] == {
        "produced_by": "finmaas models push",
        "source_file": "model-v1.txt",
    }  # type: ignore[index]
    profile = version["reference_profile"]  # type: ignore[index]
    assert profile["rows"] == 30
    assert set(profile["features"]) == {"income", "purpose"}
    assert profile["score"] is not None

    human = cli("models", "show", "credit")
    assert human.code == 0
    assert "credit  binary  active" in human.out
    assert "0.7100" in human.out


def test_promote_rollback_and_duplicate_alias(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    _push(cli, model_files, "v1")
    _push(cli, model_files, "v2")
    _approve(settings, "credit")
    assert cli("models", "promote", "credit", "1").out == "credit@production → version 1\n"
    assert cli("models", "promote", "credit", "2").out == "credit@production → version 2 (was 1)\n"

    duplicate = cli("models", "promote", "credit", "2")
    assert duplicate.code == 1
    assert (
        duplicate.err == "error: alias 'production' of model 'credit' already points to version 2\n"
    )

    assert (
        cli("models", "rollback", "credit").out
        == "credit@production → version 1 (rolled back from 2)\n"
    )
    again = cli("models", "rollback", "credit")
    assert again.code == 1
    assert (
        again.err
        == "error: alias 'production' of model 'credit' has no earlier version to roll back to\n"
    )

    staged = cli("models", "promote", "credit", "2", "--alias", "staging")
    assert staged.out == "credit@staging → version 2\n"


def test_diff_shows_metrics_signature_and_size(cli: Cli, model_files: dict[str, Path]) -> None:
    _push(cli, model_files, "v1", "--metric", "auc=0.70", "--metric", "ks=0.30")
    _push(cli, model_files, "v2", "--metric", "auc=0.75")
    result = cli("models", "diff", "credit", "1", "2")
    assert result.code == 0, result.err
    rows = [[cell for cell in line.split() if cell != "│"] for line in result.out.splitlines()]
    assert ["auc", "0.7000", "0.7500", "+0.0500"] in rows
    assert ["ks", "0.3000", "—"] in rows
    assert ["inputs", "2", "2"] in rows
    assert ["task", "binary", "binary"] in rows
    assert result.out.endswith(
        "signature: identical task, classes, positive class, outputs, decision threshold "
        "and inputs\n"
    )


def test_unknown_model_and_version(cli: Cli, model_files: dict[str, Path]) -> None:
    missing = cli("models", "show", "nope")
    assert (missing.code, missing.err) == (1, "error: model 'nope' not found\n")
    _push(cli, model_files)
    version = cli("models", "show", "credit", "--version", "7")
    assert (version.code, version.err) == (1, "error: model 'credit' has no version 7\n")
    promote = cli("models", "promote", "credit", "7")
    assert (promote.code, promote.err) == (1, "error: model 'credit' has no version 7\n")


def test_alias_to_archived_version(cli: Cli, model_files: dict[str, Path]) -> None:
    _push(cli, model_files, "v1")
    _push(cli, model_files, "v2")
    assert cli("models", "archive", "credit", "--version", "1").out == "archived credit@1\n"
    result = cli("models", "promote", "credit", "1")
    assert result.code == 1
    assert (
        result.err
        == "error: version 1 of model 'credit' is archived; alias 'production' cannot point to it\n"
    )


def test_format_mismatch_leaves_nothing(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    result = _push(cli, model_files, "v1", "--format", "onnx")
    assert result.code == 1
    assert (
        result.err
        == "error: file 'model-v1.txt' is not a valid onnx artifact: it looks like lightgbm\n"
    )
    assert artifact_files(settings) == []
    assert cli("models", "list", "--json", "--all").out.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/b", "model name 'a/b' contains '/'; use lowercase letters, digits, '.', '_' and '-'"),
        ("..", "model name '..' must start with a letter or a digit"),
        (
            "credit risk",
            "model name 'credit risk' contains ' '; use lowercase letters, digits, '.', '_' and '-'",
        ),
        ("x" * 300, "model name must be at most 64 characters, got 300"),
    ],
)
def test_bad_model_names(
    cli: Cli, model_files: dict[str, Path], settings: Settings, name: str, message: str
) -> None:
    result = _push(cli, model_files, name=name)
    assert (result.code, result.err) == (1, f"error: {message}\n")
    assert artifact_files(settings) == []


def test_invalid_signature_json(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"task": "binary", "classes": ["good", "bad"], "inputs": [{"name": "income", "dtype": "decimal"}]}'
    )
    result = cli("models", "push", "credit", str(model_files["v1"]), "--signature", str(broken))
    assert result.code == 1
    assert result.err == (
        "error: invalid signature: inputs[0].dtype: Input should be 'float', 'int', 'bool', 'category' or 'string'\n"
    )
    not_json = tmp_path / "not.json"
    not_json.write_text("{inputs: ")
    result = cli("models", "push", "credit", str(model_files["v1"]), "--signature", str(not_json))
    assert result.code == 1
    assert result.err.startswith("error: invalid signature: not valid JSON (")


def test_signature_that_does_not_fit_the_model(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, settings: Settings
) -> None:
    wider = tmp_path / "wider.json"
    wider.write_text(
        '{"task": "binary", "classes": ["good", "bad"], "positive_class": "bad", "inputs": ['
        '{"name": "a", "dtype": "float"}, {"name": "b", "dtype": "float"}, {"name": "c", "dtype": "float"}]}'
    )
    result = cli("models", "push", "credit", str(model_files["v1"]), "--signature", str(wider))
    assert result.code == 1
    assert (
        result.err == "error: the signature has 3 inputs but the lightgbm model reads 2 features\n"
    )
    assert artifact_files(settings) == []


def test_failed_registry_write_leaves_no_orphan_file(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    _push(cli, model_files, "v1")
    cli("models", "archive", "credit")
    result = _push(cli, model_files, "v2")
    assert (result.code, result.err) == (
        1,
        "error: model 'credit' is archived; it takes no new versions\n",
    )
    assert len(artifact_files(settings)) == 1  # v1's file stays (archived, not purged); v2 is gone


def test_corrupted_artifact_is_detected(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    _push(cli, model_files, "v1")
    assert cli("models", "verify", "credit").out.endswith(
        "credit@1: sha256 verified, loads as lightgbm\n"
    )
    [path] = artifact_files(settings)
    path.write_bytes(path.read_bytes().replace(b"tree", b"TREE", 1))
    result = cli("models", "verify", "credit")
    assert result.code == 1
    assert result.err.startswith(
        f"error: artifact sha256:{path.name} is corrupted: its bytes hash to sha256:"
    )
    assert result.err.endswith("; refusing to load it\n")


def test_archive_and_purge(cli: Cli, model_files: dict[str, Path], settings: Settings) -> None:
    _push(cli, model_files, "v1")
    _push(cli, model_files, "v2")
    _approve(settings, "credit")
    cli("models", "promote", "credit", "2")
    refused = cli("models", "archive", "credit", "--version", "2")
    assert refused.err == (
        "error: version 2 of model 'credit' is the target of alias 'production'; move or delete the alias first\n"
    )
    archived = cli("models", "archive", "credit")
    assert (
        archived.out
        == "archived model credit and its versions; artifacts stay until `finmaas models purge`\n"
    )
    assert len(artifact_files(settings)) == 2
    assert cli("models", "list", "--json").out.strip() == "[]"
    assert cli("models", "purge", "--yes").out == "purged 2 artifact file(s)\n"
    assert artifact_files(settings) == []
    assert cli("models", "purge", "--yes").out == "nothing to purge\n"


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_pickle_is_refused_and_never_executed(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, settings: Settings
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_Marker(marker)))
    result = cli(
        "models", "push", "credit", str(evil), "--signature", str(model_files["signature"])
    )
    assert result.code == 1
    assert result.err == (
        "error: pickle/joblib files execute code when loaded; refused. Export the model as ONNX, "
        "LightGBM text, XGBoost JSON/UBJ or skops, or (admins only) pass --allow-pickle\n"
    )
    disguised = cli(
        "models",
        "push",
        "credit",
        str(evil),
        "--signature",
        str(model_files["signature"]),
        "--format",
        "skops",
    )
    assert (
        disguised.err
        == "error: file 'model.pkl' is not a valid skops artifact: it looks like pickle\n"
    )
    assert not marker.exists()
    assert artifact_files(settings) == []


def test_missing_files(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    result = cli(
        "models",
        "push",
        "credit",
        str(tmp_path / "nope.onnx"),
        "--signature",
        str(model_files["signature"]),
    )
    assert (result.code, result.err) == (
        1,
        f"error: file '{tmp_path / 'nope.onnx'}' does not exist\n",
    )
    result = cli(
        "models",
        "push",
        "credit",
        str(model_files["v1"]),
        "--signature",
        str(tmp_path / "sig.json"),
    )
    assert (result.code, result.err) == (
        1,
        f"error: signature file '{tmp_path / 'sig.json'}' does not exist\n",
    )


def test_bad_metric_flag(cli: Cli, model_files: dict[str, Path]) -> None:
    result = _push(cli, model_files, "v1", "--metric", "auc")
    assert (result.code, result.err) == (1, "error: --metric takes KEY=VALUE, got 'auc'\n")
    result = _push(cli, model_files, "v1", "--metric", "auc=high")
    assert (result.code, result.err) == (1, "error: --metric auc must be a number, got 'high'\n")


def _approve(settings: Settings, name: str) -> None:
    registry = Registry.open(settings)
    try:
        approve(registry, name)
    finally:
        registry.close()


def test_push_records_the_explanation_profile(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    codes = tmp_path / "codes.json"
    codes.write_text('{"income": "Income insufficient for the amount of credit"}')
    reference = str(model_files["reference"])
    pushed = _push(
        cli,
        model_files,
        "v2",
        "--reference",
        reference,
        "--reason-codes",
        str(codes),
        "--explain-reference",
        "cutoff",
    )
    assert pushed.code == 0, pushed.err
    version = as_json(cli("models", "show", "credit", "--version", "1", "--json").out)
    explanation = version["explanation"]  # type: ignore[index]
    assert (explanation["method"], explanation["reference"]) == ("tree_shap", "cutoff")
    assert explanation["reason_texts"] == {
        "income": "Income insufficient for the amount of credit",
        "purpose": "Purpose",
    }
    assert 0 < explanation["reference_rows"] <= 30

    no_sample = _push(cli, model_files, "v1", "--reason-codes", str(codes))
    assert (no_sample.code, no_sample.err) == (
        1,
        "error: reason codes need a reference sample: explanations are measured on it\n",
    )
    bad = _push(cli, model_files, "v1", "--reference", reference, "--explain-reference", "all")
    assert (bad.code, bad.err) == (
        1,
        "error: explanation reference must be one of sample, cutoff\n",
    )


def test_explain_command(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    pushed = _push(cli, model_files, "v2", "--reference", str(model_files["reference"]))
    assert pushed.code == 0, pushed.err
    records = tmp_path / "applicants.json"
    records.write_text('[{"income": 500, "purpose": "tv"}, {"income": 9000, "purpose": "car"}]')

    shown = cli("explain", "credit", "--json", str(records), "--version", "1")
    assert shown.code == 0, shown.err
    assert shown.out.startswith("record 0 — credit@1: probability ")
    assert "record 1 — credit@1: " in shown.out
    assert "tree_shap (exact), reference sample: base " in shown.out

    body = as_json(cli("explain", "credit", "--json", str(records), "-v", "1", "--print-json").out)
    predictions = body["predictions"]  # type: ignore[index]
    assert len(predictions) == 2
    for prediction in predictions:
        explanation = prediction["explanation"]
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert abs(total - explanation["output"]) < 1e-6
        assert set(explanation["contributions"]) == {"income", "purpose"}

    too_many = cli("explain", "credit", "--json", str(records), "-v", "1", "--reasons", "3")
    assert (too_many.code, too_many.err) == (
        1,
        "error: reasons must be a whole number from 1 to 2, got 3\n",
    )
    records.write_text('{"instances": []}')
    empty = cli("explain", "credit", "--json", str(records), "-v", "1")
    assert (empty.code, empty.err) == (
        1,
        f"error: records file {str(records)!r} must hold a record, a list of records or "
        '{"instances": [...]}\n',
    )
