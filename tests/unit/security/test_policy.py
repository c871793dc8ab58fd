"""Roles, verbs, grants and tenants (finmaas.security.policy): pure functions, no database."""

from __future__ import annotations

import pytest

from finmaas.errors import Forbidden, Invalid
from finmaas.registry.key_store import Grant, KeyRecord, ModelPolicy
from finmaas.security.policy import (
    ANONYMOUS_KEY,
    ROLES,
    VERBS,
    allowed_verbs,
    check_grants,
    check_role,
    parse_grant,
    principal_of,
    require_role,
)

ALL = frozenset({"predict", "explain", "metadata"})
NONE: frozenset[str] = frozenset()
ACME = ModelPolicy("acme", None)
OTHER = ModelPolicy("other", 4)


def key(role: str = "consumer", tenant: str = "acme", *grants: Grant) -> KeyRecord:
    return KeyRecord(
        id="0123456789abcdef",
        name="k",
        owner="",
        tenant=tenant,
        role=role,
        secret_hash="0" * 64,
        grants=grants,
    )


# -- allowed_verbs --------------------------------------------------------------


@pytest.mark.parametrize("policy", [ACME, OTHER, None])
def test_admin_sees_every_model_with_every_verb(policy: ModelPolicy | None) -> None:
    assert allowed_verbs(key("admin"), "anything", policy) == ALL
    # Grants do not narrow an admin.
    admin = key("admin", "acme", Grant("credit-*", ("metadata",)))
    assert allowed_verbs(admin, "fraud", policy) == ALL


@pytest.mark.parametrize("role", ["developer", "validator", "consumer"])
def test_a_key_without_grants_sees_only_its_tenants_models(role: str) -> None:
    assert allowed_verbs(key(role), "credit-risk", ACME) == ALL
    assert allowed_verbs(key(role), "credit-risk", OTHER) == NONE
    assert allowed_verbs(key(role), "credit-risk", None) == NONE  # unknown or archived model
    assert allowed_verbs(key(role, "other"), "credit-risk", OTHER) == ALL


def test_grants_match_model_names_with_globs() -> None:
    granted = key("consumer", "acme", Grant("credit-*", ("predict",)))
    assert allowed_verbs(granted, "credit-risk", OTHER) == {"predict"}
    assert allowed_verbs(granted, "credit-", None) == {"predict"}
    assert allowed_verbs(granted, "credit", OTHER) == NONE
    assert allowed_verbs(granted, "xcredit-risk", OTHER) == NONE
    assert allowed_verbs(granted, "CREDIT-risk", OTHER) == NONE  # case-sensitive


def test_grants_replace_the_tenant_rule() -> None:
    """A key with grants sees exactly what they match, even in its own tenant."""
    granted = key("consumer", "acme", Grant("credit-*", ("predict",)))
    assert allowed_verbs(granted, "fraud", ACME) == NONE
    assert allowed_verbs(granted, "credit-risk", ACME) == {"predict"}


def test_grants_add_up() -> None:
    granted = key(
        "developer",
        "acme",
        Grant("credit-*", ("predict",)),
        Grant("credit-risk", ("explain",)),
        Grant("fraud-v?", ("metadata",)),
        Grant("[ab]*", ("explain", "metadata")),
    )
    assert allowed_verbs(granted, "credit-risk", None) == {"predict", "explain"}
    assert allowed_verbs(granted, "credit-pd", None) == {"predict"}
    assert allowed_verbs(granted, "fraud-v2", None) == {"metadata"}
    assert allowed_verbs(granted, "fraud-v10", None) == NONE
    assert allowed_verbs(granted, "aml", None) == {"explain", "metadata"}
    assert allowed_verbs(granted, "cml", None) == NONE


def test_verbs_are_the_intersection_of_role_and_grants() -> None:
    auditor = key("auditor", "acme", Grant("*", VERBS))
    assert allowed_verbs(auditor, "credit-risk", OTHER) == {"metadata"}
    assert allowed_verbs(key("auditor"), "credit-risk", ACME) == {"metadata"}
    assert allowed_verbs(key("auditor"), "credit-risk", OTHER) == NONE
    predict_only = key("auditor", "acme", Grant("*", ("predict", "explain")))
    assert allowed_verbs(predict_only, "credit-risk", ACME) == NONE


def test_an_unknown_role_may_do_nothing() -> None:
    assert allowed_verbs(key("root"), "credit-risk", ACME) == NONE
    assert allowed_verbs(key("root", "acme", Grant("*", VERBS)), "m", ACME) == NONE


def test_the_anonymous_key_is_an_admin_of_the_default_tenant() -> None:
    assert (ANONYMOUS_KEY.role, ANONYMOUS_KEY.tenant, ANONYMOUS_KEY.secret_hash) == (
        "admin",
        "default",
        "",
    )
    assert allowed_verbs(ANONYMOUS_KEY, "anything", None) == ALL


# -- principals and roles -----------------------------------------------------------


def test_principal_of_acts_as_the_key() -> None:
    principal = principal_of(key("validator", "retail"), "10.0.0.1")
    actor = principal.actor
    assert (actor.name, actor.role, actor.tenant, actor.origin, actor.key_id) == (
        "key:0123456789abcdef",
        "validator",
        "retail",
        "10.0.0.1",
        "0123456789abcdef",
    )
    assert (principal.role, principal.tenant, principal.is_admin) == ("validator", "retail", False)
    assert principal_of(key("admin"), "").is_admin is True


def test_require_role() -> None:
    require_role(principal_of(key("developer"), ""), "developer")
    require_role(principal_of(key("validator"), ""), "developer", "validator")
    require_role(principal_of(key("admin"), ""), "auditor")  # an admin may do anything

    with pytest.raises(Forbidden) as err:
        require_role(principal_of(key("consumer"), ""), "developer", "validator")
    assert str(err.value) == (
        "this needs the role developer or validator; the key's role is consumer"
    )
    with pytest.raises(Forbidden) as err:
        require_role(principal_of(key("auditor"), ""), "admin")
    assert str(err.value) == "this needs the role admin; the key's role is auditor"


def test_check_role() -> None:
    assert ROLES == ("admin", "developer", "validator", "consumer", "auditor")
    for role in ROLES:
        assert check_role(role) == role
    with pytest.raises(Invalid) as err:
        check_role("x" * 50)
    assert str(err.value) == (
        f"role must be one of admin, developer, validator, consumer, auditor, got {'x' * 40!r}"
    )


# -- grants -----------------------------------------------------------------------


def test_check_grants_accepts_and_normalises() -> None:
    assert check_grants(None) == ()
    assert check_grants([]) == ()
    assert check_grants(
        [
            {"models": "credit-*", "verbs": ["predict", "predict", "explain"]},
            {"models": "fraud"},
            {"models": "a.b_c-[0-9]?!", "verbs": ["metadata"]},
        ]
    ) == (
        Grant("credit-*", ("explain", "predict")),
        Grant("fraud", ("explain", "metadata", "predict")),
        Grant("a.b_c-[0-9]?!", ("metadata",)),
    )
    assert len(check_grants([{"models": "m"}] * 100)) == 100


LIST_MESSAGE = "grants must be a list of at most 100 {models, verbs} objects"
OBJECT_MESSAGE = "grant 0: must be an object with 'models' and 'verbs'"
MODELS_MESSAGE = "grant 0: 'models' must be a model name or glob of 1-64 characters"
VERBS_MESSAGE = "grant 0: 'verbs' must be a non-empty list of predict, explain, metadata"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("credit-*", LIST_MESSAGE),
        ({"models": "m"}, LIST_MESSAGE),
        ([{"models": "m"}] * 101, LIST_MESSAGE),
        ([1], OBJECT_MESSAGE),
        (["credit-*"], OBJECT_MESSAGE),
        ([{"models": "m", "verbs": ["predict"], "tenant": "x"}], OBJECT_MESSAGE),
        ([{}], MODELS_MESSAGE),
        ([{"verbs": ["predict"]}], MODELS_MESSAGE),
        ([{"models": ""}], MODELS_MESSAGE),
        ([{"models": "m" * 65}], MODELS_MESSAGE),
        ([{"models": 7}], MODELS_MESSAGE),
        ([{"models": "a b"}], "grant 0: 'models' 'a b' has a character a model name cannot"),
        ([{"models": "a/*"}], "grant 0: 'models' 'a/*' has a character a model name cannot"),
        ([{"models": "m", "verbs": []}], VERBS_MESSAGE),
        ([{"models": "m", "verbs": "predict"}], VERBS_MESSAGE),
        ([{"models": "m", "verbs": ["predict", "delete"]}], VERBS_MESSAGE),
        ([{"models": "m", "verbs": None}], VERBS_MESSAGE),
        (
            [{"models": "ok"}, {"models": "ok", "verbs": ["train"]}],
            "grant 1: 'verbs' must be a non-empty list of predict, explain, metadata",
        ),
        (
            [{"models": "ok"}, {"models": "ok"}, {"models": "no;"}],
            "grant 2: 'models' 'no;' has a character a model name cannot",
        ),
    ],
)
def test_check_grants_refuses(raw: object, message: str) -> None:
    with pytest.raises(Invalid) as err:
        check_grants(raw)
    assert str(err.value) == message


def test_parse_grant() -> None:
    assert parse_grant("credit-*:predict,metadata") == Grant("credit-*", ("metadata", "predict"))
    assert parse_grant("credit-*") == Grant("credit-*", ("explain", "metadata", "predict"))
    assert parse_grant("fraud:explain") == Grant("fraud", ("explain",))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (":predict", MODELS_MESSAGE),
        ("credit-*:predict,", VERBS_MESSAGE),
        ("credit-*:predict,train", VERBS_MESSAGE),
        (
            "credit risk:predict",
            "grant 0: 'models' 'credit risk' has a character a model name cannot",
        ),
    ],
)
def test_parse_grant_refuses(text: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_grant(text)
    assert str(err.value) == message
