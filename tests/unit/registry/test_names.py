"""Model and alias name rules (the full bad-name table runs through the registry)."""

from __future__ import annotations

import pytest

from finmaas.registry.names import check_alias_name, check_model_name


@pytest.mark.parametrize("name", ["credit-risk", "pd_model.v2", "a", "0day", "x" * 64])
def test_good_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("alias", ["production", "staging", "challenger", "canary-2", "a"])
def test_good_aliases(alias: str) -> None:
    assert check_alias_name(alias) == alias
