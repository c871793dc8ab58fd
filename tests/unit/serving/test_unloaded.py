"""UnloadedModels: one server's unloaded set, shared by its workers through a file."""

from __future__ import annotations

from pathlib import Path

from finmaas.serving.unloaded import UnloadedModels


def test_one_workers_unload_reaches_the_other_on_its_next_reload(tmp_path: Path) -> None:
    path = tmp_path / "unloaded.json"
    first, second = UnloadedModels(path), UnloadedModels(path)
    first.add("credit-risk")
    assert "credit-risk" in first
    assert "credit-risk" not in second  # until its refresh
    second.reload()
    assert "credit-risk" in second
    second.add("churn")
    second.discard("credit-risk")
    first.reload()
    assert ("credit-risk" in first, "churn" in first) == (False, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unloaded.json", "unloaded.lock"]


def test_without_a_file_the_set_lives_in_memory() -> None:
    unloaded = UnloadedModels()
    unloaded.add("credit-risk")
    unloaded.reload()
    assert "credit-risk" in unloaded
    unloaded.discard("credit-risk")
    assert "credit-risk" not in unloaded


def test_a_fresh_server_has_nothing_unloaded(tmp_path: Path) -> None:
    unloaded = UnloadedModels(tmp_path / "unloaded.json")
    unloaded.reload()
    assert "credit-risk" not in unloaded
