"""Registry behaviour, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import pytest

from finmaas.errors import Conflict, Invalid, InvalidName, NotFound
from finmaas.registry import NewModel, Registry
from finmaas.schema import Feature, ModelSignature
from tests.approvals import approve
from tests.integration.registry.helpers import new_version


def test_first_push_creates_the_model_and_numbers_versions(registry: Registry) -> None:
    first = registry.publish_version(
        "credit-risk",
        new_version("a"),
        actor="alice",
        model_spec=NewModel(description="PD model", owner="risk", tags={"desk": "retail"}),
    )
    second = registry.publish_version("credit-risk", new_version("b"), actor="bob")

    assert (first.version, second.version) == (1, 2)
    model = registry.get_model("credit-risk")
    assert (model.description, model.owner, model.tags, model.task) == (
        "PD model",
        "risk",
        {"desk": "retail"},
        "binary",
    )
    assert model.latest_version == 2
    assert model.created_by == "alice"
    assert second.created_by == "bob"
    assert second.signature == first.signature
    assert [v.version for v in registry.list_versions("credit-risk")] == [1, 2]


def test_version_round_trips_every_field(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="alice")
    published = registry.publish_version(
        "m",
        new_version(
            "b",
            metrics={"auc": 0.79, "ks": 0.45},
            params={"num_leaves": 8, "nested": {"a": [1, 2]}},
            tags={"team": "risk"},
            parent_version=1,
            lineage={"method": "distill"},
            reference_profile={"rows": 3},
            model_card="# Card",
        ),
        actor="alice",
    )
    loaded = registry.get_version("m", 2)
    assert loaded == published
    assert loaded.metrics == {"auc": 0.79, "ks": 0.45}
    assert loaded.params == {"num_leaves": 8, "nested": {"a": [1, 2]}}
    assert (loaded.parent_version, loaded.lineage, loaded.model_card) == (
        1,
        {"method": "distill"},
        "# Card",
    )
    assert loaded.reference_profile == {"rows": 3}
    assert loaded.created_at.tzinfo is not None


def test_unknown_model_version_and_alias(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="a")
    with pytest.raises(NotFound) as err:
        registry.get_model("nope")
    assert str(err.value) == "model 'nope' not found"
    with pytest.raises(NotFound) as err:
        registry.get_version("m", 9)
    assert str(err.value) == "model 'm' has no version 9"
    with pytest.raises(NotFound) as err:
        registry.get_version("m", "staging")
    assert str(err.value) == "model 'm' has no alias 'staging'"
    with pytest.raises(NotFound) as err:
        registry.get_version("nope", 1)
    assert str(err.value) == "model 'nope' not found"


def test_version_refs_are_numbers_digits_or_aliases(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="a")
    registry.publish_version("m", new_version("b"), actor="a")
    registry.set_alias("m", "staging", 1, actor="a")
    assert registry.get_version("m", 2).version == 2
    assert registry.get_version("m", "2").version == 2
    staged = registry.get_version("m", "staging")
    assert (staged.version, staged.aliases) == (1, ("staging",))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/b", "model name 'a/b' contains '/'; use lowercase letters, digits, '.', '_' and '-'"),
        ("a..b", "model name 'a..b' must not contain '..'"),
        ("..", "model name '..' must start with a letter or a digit"),
        (
            "credit risk",
            "model name 'credit risk' contains ' '; use lowercase letters, digits, '.', '_' and '-'",
        ),
        ("x" * 300, "model name must be at most 64 characters, got 300"),
        ("", "model name must not be empty"),
        (
            "Credit",
            "model name 'Credit' contains 'C'; use lowercase letters, digits, '.', '_' and '-'",
        ),
    ],
)
def test_bad_model_names_are_refused(registry: Registry, name: str, message: str) -> None:
    with pytest.raises(InvalidName) as err:
        registry.publish_version(name, new_version(), actor="a")
    assert str(err.value) == message
    assert registry.list_models(include_archived=True) == []


def test_task_of_a_model_is_fixed(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="a")
    regression = ModelSignature(task="regression", inputs=(Feature(name="x", dtype="float"),))
    with pytest.raises(Invalid) as err:
        registry.publish_version("m", new_version(signature=regression), actor="a")
    assert str(err.value) == "model 'm' is a binary model but the signature says regression"
    assert registry.get_model("m").latest_version == 1


def test_parent_must_exist(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="a")
    with pytest.raises(NotFound) as err:
        registry.publish_version("m", new_version(parent_version=5), actor="a")
    assert str(err.value) == "model 'm' has no version 5 to be the parent"
    assert [v.version for v in registry.list_versions("m")] == [1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metrics": {"auc": float("nan")}}, "metrics.auc must be a finite number, got nan"),
        ({"metrics": {"auc": "high"}}, "metrics.auc must be a number, got str"),
        (
            {"metrics": {"bad key": 1.0}},
            "metrics: key 'bad key' must be 1-64 characters of letters, digits, '_', '.', ':', '/', '-'",
        ),
        ({"tags": {"k": 1}}, "tags.k must be a string of at most 256 characters"),
        (
            {"params": {"f": object()}},
            "params must be JSON-serialisable: Type is not JSON serializable: object",
        ),
        (
            {"artifact_digest": "abc"},
            "artifact digest must be 64 lowercase hex characters, got 'abc'",
        ),
    ],
)
def test_bad_version_fields_are_refused(
    registry: Registry, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(Invalid) as err:
        registry.publish_version("m", new_version(**fields), actor="a")
    assert str(err.value) == message
    assert registry.list_models(include_archived=True) == []


def test_promote_and_roll_back_walk_the_alias_history(registry: Registry) -> None:
    for seed in "abc":
        registry.publish_version("m", new_version(seed), actor="a")
    approve(registry, "m", 1, 2, 3)
    registry.set_alias("m", "production", 1, actor="alice")
    registry.set_alias("m", "production", 2, actor="alice")
    registry.set_alias("m", "production", 3, actor="alice")

    assert registry.rollback_alias("m", "production", actor="bob").version == 2
    assert registry.rollback_alias("m", "production", actor="bob").version == 1
    with pytest.raises(Conflict) as err:
        registry.rollback_alias("m", "production", actor="bob")
    assert (
        str(err.value) == "alias 'production' of model 'm' has no earlier version to roll back to"
    )

    registry.set_alias("m", "production", 3, actor="alice")
    assert registry.rollback_alias("m", "production", actor="bob").version == 1
    history = registry.alias_history("m", "production")
    assert [(e.action, e.from_version, e.to_version, e.actor) for e in history] == [
        ("set", None, 1, "alice"),
        ("set", 1, 2, "alice"),
        ("set", 2, 3, "alice"),
        ("rollback", 3, 2, "bob"),
        ("rollback", 2, 1, "bob"),
        ("set", 1, 3, "alice"),
        ("rollback", 3, 1, "bob"),
    ]


def test_duplicate_alias_is_refused_and_changes_nothing(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="a")
    approve(registry, "m")
    registry.set_alias("m", "production", 1, actor="a")
    with pytest.raises(Conflict) as err:
        registry.set_alias("m", "production", 1, actor="a")
    assert str(err.value) == "alias 'production' of model 'm' already points to version 1"
    assert len(registry.alias_history("m", "production")) == 1


def test_alias_to_archived_version_is_refused(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="a")
    registry.publish_version("m", new_version("b"), actor="a")
    registry.archive_version("m", 1, actor="a")
    with pytest.raises(Conflict) as err:
        registry.set_alias("m", "production", 1, actor="a")
    assert (
        str(err.value)
        == "version 1 of model 'm' is archived; alias 'production' cannot point to it"
    )
    assert registry.list_aliases("m") == []


def test_rollback_to_archived_version_is_refused(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="a")
    registry.publish_version("m", new_version("b"), actor="a")
    approve(registry, "m")
    registry.set_alias("m", "production", 1, actor="a")
    registry.set_alias("m", "production", 2, actor="a")
    registry.archive_version("m", 1, actor="a")
    with pytest.raises(Conflict) as err:
        registry.rollback_alias("m", "production", actor="a")
    assert (
        str(err.value)
        == "cannot roll back alias 'production' of model 'm' to version 1: it is archived"
    )
    assert registry.get_version("m", "production").version == 2


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        (
            "Prod",
            "alias 'Prod' must start with a lowercase letter and contain only lowercase letters, digits and '-'",
        ),
        (
            "1st",
            "alias '1st' must start with a lowercase letter and contain only lowercase letters, digits and '-'",
        ),
        ("a" * 40, "alias must be at most 32 characters, got 40"),
    ],
)
def test_bad_alias_names(registry: Registry, alias: str, message: str) -> None:
    registry.publish_version("m", new_version(), actor="a")
    with pytest.raises(InvalidName) as err:
        registry.set_alias("m", alias, 1, actor="a")
    assert str(err.value) == message


def test_archiving_an_aliased_version_is_refused(registry: Registry) -> None:
    registry.publish_version("m", new_version(), actor="a")
    approve(registry, "m")
    registry.set_alias("m", "production", 1, actor="a")
    with pytest.raises(Conflict) as err:
        registry.archive_version("m", 1, actor="a")
    assert str(err.value) == (
        "version 1 of model 'm' is the target of alias 'production'; move or delete the alias first"
    )
    registry.delete_alias("m", "production", actor="a")
    archived = registry.archive_version("m", 1, actor="a")
    assert archived.status == "archived"
    assert archived.archived_at is not None
    with pytest.raises(Conflict) as err:
        registry.archive_version("m", 1, actor="a")
    assert str(err.value) == "version 1 of model 'm' is already archived"


def test_archiving_a_model_archives_versions_and_removes_aliases(registry: Registry) -> None:
    registry.publish_version("m", new_version("a"), actor="a")
    registry.publish_version("m", new_version("b"), actor="a")
    approve(registry, "m")
    registry.set_alias("m", "production", 2, actor="a")

    archived = registry.archive_model("m", actor="a")

    assert archived.status == "archived"
    assert registry.list_models() == []
    assert [m.name for m in registry.list_models(include_archived=True)] == ["m"]
    assert {v.status for v in registry.list_versions("m")} == {"archived"}
    assert registry.list_aliases("m") == []
    assert registry.alias_history("m", "production")[-1].action == "delete"
    with pytest.raises(Conflict) as err:
        registry.publish_version("m", new_version("c"), actor="a")
    assert str(err.value) == "model 'm' is archived; it takes no new versions"
    with pytest.raises(Conflict) as err:
        registry.archive_model("m", actor="a")
    assert str(err.value) == "model 'm' is already archived"


def test_purge_lists_only_artifacts_no_active_version_uses(registry: Registry) -> None:
    registry.publish_version("m", new_version("shared"), actor="a")
    registry.publish_version("m", new_version("only-old"), actor="a")
    registry.publish_version("n", new_version("shared"), actor="a")
    registry.archive_model("m", actor="a")

    only_old = new_version("only-old").artifact_digest
    assert registry.purgeable_artifacts() == [only_old]
    assert (
        registry.mark_artifact_purged(new_version("shared").artifact_digest, actor="tester")
        is False
    )
    assert registry.mark_artifact_purged(only_old, actor="tester") is True
    assert registry.purgeable_artifacts() == []
    assert registry.get_version("m", 2).artifact_purged_at is not None


def test_create_model_twice_conflicts(registry: Registry) -> None:
    registry.create_model("m", task="binary", actor="a")
    with pytest.raises(Conflict) as err:
        registry.create_model("m", task="binary", actor="a")
    assert str(err.value) == "model 'm' already exists"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "credit\nrisk",
            "model name 'credit\\nrisk' contains '\\n'; use lowercase letters, digits, '.', '_' and '-'",
        ),
        (
            "credit\x00",
            "model name 'credit\\x00' contains '\\x00'; use lowercase letters, digits, '.', '_' and '-'",
        ),
        (
            "../../etc",
            "model name '../../etc' contains '/'; use lowercase letters, digits, '.', '_' and '-'",
        ),
    ],
)
def test_names_with_control_characters_or_traversal_are_refused(
    registry: Registry, name: str, message: str
) -> None:
    with pytest.raises(InvalidName) as err:
        registry.publish_version(name, new_version(), actor="a")
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            NewModel(tags={"desk": "retail\x1b[31m"}),
            "tags.desk must not contain control characters",
        ),
        (NewModel(tags={"desk\n": "retail"}), None),
        (
            NewModel(owner="risk\nINFO forged log line"),
            "owner must be one line without control characters",
        ),
        (
            NewModel(description="PD model\x00"),
            "description must not contain control characters (line breaks and tabs may)",
        ),
    ],
)
def test_control_characters_in_metadata_are_refused(
    registry: Registry, spec: NewModel, message: str | None
) -> None:
    with pytest.raises(Invalid) as err:
        registry.publish_version("m", new_version(), actor="a", model_spec=spec)
    if message is None:
        assert str(err.value).startswith("tags: key 'desk\\n' must be 1-64 characters")
    else:
        assert str(err.value) == message
    assert registry.list_models(include_archived=True) == []


def test_line_breaks_in_descriptions_are_kept(registry: Registry) -> None:
    spec = NewModel(description="PD model.\n\nRetail book only.\tv2")
    registry.publish_version("m", new_version(), actor="a", model_spec=spec)
    assert registry.get_model("m").description == "PD model.\n\nRetail book only.\tv2"


@pytest.mark.parametrize("alias", ["prod\n", "prod\x00", "../prod", "prod/1"])
def test_aliases_with_control_characters_or_traversal_are_refused(
    registry: Registry, alias: str
) -> None:
    registry.publish_version("m", new_version(), actor="a")
    with pytest.raises(InvalidName) as err:
        registry.set_alias("m", alias, 1, actor="a")
    assert str(err.value) == (
        f"alias {alias!r} must start with a lowercase letter and contain only "
        "lowercase letters, digits and '-'"
    )


def test_servable_versions_leave_out_archived_versions_and_models(registry: Registry) -> None:
    for text in ("a", "b", "c"):
        registry.publish_version("m", new_version(text), actor="a")
    registry.publish_version("n", new_version("d"), actor="a")
    registry.publish_version("gone", new_version("e"), actor="a")
    registry.archive_version("m", 2, actor="a")
    registry.archive_model("gone", actor="a")
    assert registry.servable_versions() == {"m": [1, 3], "n": [1]}
    assert registry.servable_versions("m") == {"m": [1, 3]}
    assert registry.servable_versions("gone") == {}
