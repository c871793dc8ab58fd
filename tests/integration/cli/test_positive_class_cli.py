"""The positive class of a binary model through the CLI (issue 21, item 1): inferred
only when named, required at push, checked against labels, shown by ``diff`` and
guarded when an alias moves."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.registry.audit import AuditFilter
from finmaas.registry.tables import model_versions
from finmaas.schema import encode_frame, signature_from_json
from tests.approvals import approve
from tests.integration.cli.conftest import SIGNATURE, Cli, artifact_files

MISSING = (
    "error: a binary signature needs its positive class, the outcome whose probability the "
    "model returns (for credit: the adverse one, e.g. bad): {how}; without it the labels and "
    "adverse-action reasons can be attached to the wrong applicants\n"
)
INVERTED = SIGNATURE.model_copy(update={"classes": ("bad", "good"), "positive_class": "good"})


def _train_csv(tmp_path: Path) -> Path:
    data = tmp_path / "train.csv"
    data.write_text(
        "income,purpose,creditability\n1000,car,good\n2500,tv,bad\n1800,car,good\n900,tv,bad\n"
    )
    return data


def _push(cli: Cli, name: str, model: Path, signature: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("models", "push", name, str(model), "--signature", str(signature), *extra)


def _approve(settings: Settings, name: str) -> None:
    registry = Registry.open(settings)
    try:
        approve(registry, name)
    finally:
        registry.close()


def test_infer_from_a_target_needs_the_positive_class(cli: Cli, tmp_path: Path) -> None:
    data = _train_csv(tmp_path)
    result = cli("signature", "infer", str(data), "--task", "binary", "--target", "creditability")
    assert (result.code, result.out, result.err) == (
        1,
        "",
        MISSING.format(how="pass --positive-class"),
    )


def test_infer_puts_the_named_positive_class_second(cli: Cli, tmp_path: Path) -> None:
    """Sorted, the values are bad, good: the old rule made good the positive class."""
    data, out = _train_csv(tmp_path), tmp_path / "signature.json"
    args = ["--task", "binary", "--target", "creditability", "--positive-class", "bad"]
    result = cli("signature", "infer", str(data), *args, "-o", str(out))
    assert (result.code, result.out) == (
        0,
        f"wrote {out} (2 inputs, task binary, positive class bad)\n",
    )
    signature = signature_from_json(out.read_bytes())
    assert (signature.classes, signature.positive_class) == (("good", "bad"), "bad")
    document = orjson.loads(out.read_bytes())
    assert (document["classes"], document["positive_class"]) == (["good", "bad"], "bad")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--classes", "good,bad"],
            MISSING.format(how="pass --positive-class").removeprefix("error: ").rstrip("\n"),
        ),
        (
            ["--classes", "bad,good", "--positive-class", "bad"],
            "invalid signature: 'positive_class' 'bad' must be the second of 'classes' "
            "['bad', 'good']: the model returns the probability of its second class (if it "
            "returns P('bad'), list the classes as ['good', 'bad'])",
        ),
        (
            ["--target", "creditability", "--positive-class", "default"],
            "--positive-class 'default' is not a value of --target column 'creditability' "
            "(its values: 'bad', 'good')",
        ),
    ],
)
def test_infer_refuses_an_unclear_positive_class(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    result = cli("signature", "infer", str(_train_csv(tmp_path)), "--task", "binary", *args)
    assert (result.code, result.err) == (1, f"error: {message}\n")


def test_infer_with_the_positive_class_listed_last_works(cli: Cli, tmp_path: Path) -> None:
    args = ["--task", "binary", "--classes", "good,bad", "--positive-class", "bad"]
    result = cli(
        "signature", "infer", str(_train_csv(tmp_path)), "--target", "creditability", *args
    )
    assert result.code == 0, result.err
    signature = signature_from_json(result.out)
    assert (signature.classes, signature.positive_class) == (("good", "bad"), "bad")


def test_positive_class_is_only_for_binary(cli: Cli, tmp_path: Path) -> None:
    args = ["--task", "regression", "--positive-class", "bad"]
    result = cli("signature", "infer", str(_train_csv(tmp_path)), *args)
    assert (result.code, result.err) == (
        1,
        "error: --positive-class is for binary tasks, not regression\n",
    )


def test_push_of_a_signature_without_positive_class_is_refused(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, settings: Settings
) -> None:
    old = tmp_path / "old.json"
    document = orjson.loads(SIGNATURE.to_json())
    del document["positive_class"]
    old.write_bytes(orjson.dumps(document))
    result = _push(cli, "credit", model_files["v1"], old)
    assert (result.code, result.err) == (
        1,
        "error: invalid signature: "
        + MISSING.format(how="set 'positive_class'").removeprefix("error: "),
    )
    assert artifact_files(settings) == []


def _labelled_reference(folder: Path, model: Path, *, inverted: bool) -> tuple[Path, float]:
    """200 applicants labelled by the rule the model learnt (bad = label 1), or the
    other way round; and the AUC of the model's score for 'bad' on them."""
    rng = np.random.default_rng(5)
    income = rng.gamma(2.0, 1000.0, 200).round(2)
    purpose = rng.integers(0, 3, 200)
    one = income / 4000 + 0.3 * purpose > 0.8
    bad = ~one if inverted else one
    names = np.array(["car", "house", "tv"])[purpose]
    path = folder / ("inverted.csv" if inverted else "labelled.csv")
    rows = [f"{i},{p},{'bad' if b else 'good'}" for i, p, b in zip(income, names, bad, strict=True)]
    path.write_text("income,purpose,creditability\n" + "\n".join(rows) + "\n")
    booster = lgb.Booster(model_file=str(model))
    import pandas as pd

    encoded = encode_frame(SIGNATURE, pd.DataFrame({"income": income, "purpose": names}))
    return path, float(roc_auc_score(bad, booster.predict(np.asarray(encoded, dtype=float))))


def test_push_with_labels_refuses_a_model_that_ranks_the_positive_class_below_chance(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, settings: Settings
) -> None:
    reference, auc = _labelled_reference(tmp_path, model_files["v2"], inverted=True)
    assert auc < 0.5
    result = _push(
        cli,
        "credit",
        model_files["v2"],
        model_files["signature"],
        "--reference",
        str(reference),
        "--target",
        "creditability",
    )
    assert (result.code, result.err) == (
        1,
        f"error: refused: on the 200 labelled reference rows the model's probability of "
        f"'bad' ranks 'bad' below chance (AUC {auc:.3f}, under 0.5); is the positive class "
        "inverted? If the model returns the probability of 'good', declare classes "
        "['bad', 'good'] with positive_class 'good'\n",
    )
    assert artifact_files(settings) == []


def test_push_with_labels_records_the_auc(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    reference, auc = _labelled_reference(tmp_path, model_files["v2"], inverted=False)
    result = _push(
        cli,
        "credit",
        model_files["v2"],
        model_files["signature"],
        "--reference",
        str(reference),
        "--target",
        "creditability",
    )
    assert result.code == 0, result.err
    assert result.out.endswith(f"AUC of P(bad) on the labelled reference: {auc:.3f}\n")
    shown = orjson.loads(cli("models", "show", "credit", "--version", "1", "--json").out)
    assert shown["metrics"]["reference_auc"] == pytest.approx(auc, abs=1e-9)
    assert shown["params"]["reference_labels"]["rows"] == 200
    assert shown["reference_profile"]["rows"] == 200
    assert "creditability" not in shown["reference_profile"]["features"]


def test_push_target_needs_a_reference_and_its_column(
    cli: Cli, model_files: dict[str, Path]
) -> None:
    alone = _push(cli, "credit", model_files["v1"], model_files["signature"], "--target", "y")
    assert (alone.code, alone.err) == (
        1,
        "error: --target names a column of the --reference sample; pass --reference\n",
    )
    missing = _push(
        cli,
        "credit",
        model_files["v1"],
        model_files["signature"],
        "--reference",
        str(model_files["reference"]),
        "--target",
        "creditability",
    )
    assert (missing.code, missing.err) == (
        1,
        "error: the reference target column 'creditability' is not in reference.csv\n",
    )


def _two_versions_differing_in_class_order(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    inverted = tmp_path / "inverted.json"
    inverted.write_bytes(INVERTED.to_json())
    assert _push(cli, "credit", model_files["v1"], model_files["signature"]).code == 0
    pushed = _push(cli, "credit", model_files["v1"], inverted)
    assert pushed.code == 0, pushed.err


def test_diff_reports_a_class_order_change(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    _two_versions_differing_in_class_order(cli, model_files, tmp_path)
    result = cli("models", "diff", "credit", "1", "2")
    assert result.code == 0, result.err
    rows = [[cell for cell in line.split() if cell != "│"] for line in result.out.splitlines()]
    assert ["task", "binary", "binary"] in rows
    assert ["classes", "good,", "bad", "bad,", "good", "changed"] in rows
    assert ["positive", "class", "bad", "good", "changed"] in rows
    assert ["decision", "threshold", "0.5", "0.5"] in rows
    assert result.out.endswith(
        "changed classes: order good, bad → bad, good\nchanged positive class: bad → good\n"
    )
    assert "identical" not in result.out


def test_diff_of_identical_signatures_says_so(cli: Cli, model_files: dict[str, Path]) -> None:
    for which in ("v1", "v2"):
        _push(cli, "credit", model_files[which], model_files["signature"])
    result = cli("models", "diff", "credit", "1", "2")
    assert result.out.endswith(
        "signature: identical task, classes, positive class, outputs, decision threshold "
        "and inputs\n"
    )


def test_promote_across_a_class_change_needs_to_accept_it(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, settings: Settings
) -> None:
    _two_versions_differing_in_class_order(cli, model_files, tmp_path)
    _approve(settings, "credit")
    assert cli("models", "promote", "credit", "1").code == 0

    refused = cli("models", "promote", "credit", "2")
    assert (refused.code, refused.err) == (
        1,
        "error: version 2 of model 'credit' changes what alias 'production' returns (now "
        "version 1): classes order good, bad → bad, good; positive class bad → good. Clients "
        "of 'production' would read probabilities and labels of another meaning; if that is "
        "intended, accept the change (--accept-signature-change, or "
        '"accept_signature_change": true in the API body)\n',
    )
    accepted = cli("models", "promote", "credit", "2", "--accept-signature-change")
    assert (accepted.code, accepted.out) == (0, "credit@production → version 2 (was 1)\n")

    registry = Registry.open(settings)
    try:
        entries = registry.audit_entries(AuditFilter(action="alias.set"))
        [entry] = [e for e in entries if e.after["version"] == 2]
    finally:
        registry.close()
    assert entry.after["signature_change"] == [
        "classes: order good, bad → bad, good",
        "positive class: bad → good",
    ]
    # a first alias has nothing to compare with; a rollback restores what was served
    assert cli("models", "promote", "credit", "2", "--alias", "staging").code == 0
    assert cli("models", "rollback", "credit").code == 0


def test_a_version_stored_before_positive_class_was_required_loads_and_serves_as_before(
    cli: Cli, model_files: dict[str, Path], settings: Settings
) -> None:
    from finmaas.publish.loading import load_version
    from finmaas.registry import LocalArtifactStore
    from finmaas.schema.output_rule import DecisionRule

    assert _push(cli, "credit", model_files["v1"], model_files["signature"]).code == 0
    registry = Registry.open(settings)
    try:
        old = orjson.loads(SIGNATURE.to_json())
        del old["positive_class"]  # the document as the registry stored it before issue 21
        with registry.engine.begin() as conn:
            conn.execute(sa.update(model_versions).values(signature=old))
        version, predictor = load_version(
            registry, LocalArtifactStore(settings.resolved_artifacts_dir), "credit", 1
        )
    finally:
        registry.close()
    assert "positive_class" not in version.signature_json
    assert (version.signature.classes, version.signature.positive_class) == (
        ("good", "bad"),
        "bad",
    )
    scores = predictor.predict(np.array([[9000.0, 2.0], [100.0, 0.0]]))
    rule = DecisionRule.of(version.signature, version.metrics, version.params)
    assert [r["label"] for r in rule.records(scores)] == [
        "bad" if p >= 0.5 else "good" for p in scores
    ]
    shown = cli("models", "show", "credit", "--version", "1")
    assert (shown.code, "task: binary classes: good, bad positive class: bad" in shown.out) == (
        0,
        True,
    )
