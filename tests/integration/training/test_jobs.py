"""Training jobs: the job table on both database backends, the worker process end to
end, a killed worker, and the CLI's follow, detach and attach."""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from finmaas.actor import Actor
from finmaas.cli.main import main
from finmaas.config import Settings
from finmaas.datasets import load_german_credit
from finmaas.datasets.headlines import generated_headlines
from finmaas.errors import Invalid, NotFound
from finmaas.jobs.runner import (
    MAX_LOG_LINES,
    STALE_SECONDS,
    START_SECONDS,
    JobProgress,
    JobStore,
    build_run,
    launch,
)
from finmaas.registry import Registry
from finmaas.registry.tables import jobs
from finmaas.training.runs import CreditRun
from tests.processes import has_exited, stop_process
from tests.waiting import wait_until

ALICE = Actor("local:alice", role="developer", tenant="retail")


@pytest.fixture
def headlines(tmp_path: Path) -> Path:
    path = tmp_path / "news.csv"
    generated_headlines(240, seed=3).to_csv(path, index=False)
    return path


def _refused(template: str, options: dict[str, Any]) -> str:
    with pytest.raises(Invalid) as caught:
        build_run(template, options)
    return str(caught.value)


def test_options_become_a_run_and_bad_ones_are_refused() -> None:
    run = build_run(
        "credit",
        {
            "data": "/data/loans.csv",
            "target": "default",
            "name": "loans",
            "protected": ["age"],
            "costs": {"accept_bad": 4.0, "reject_good": 1.0},
            "network": {"optimizer": "sgd"},
        },
    )
    assert isinstance(run, CreditRun)
    assert (run.data, run.protected, run.costs.accept_bad) == (Path("/data/loans.csv"), ("age",), 4)
    assert run.network.optimizer == "sgd"
    assert _refused("regression", {"data": "x"}) == (
        "template must be one of credit, forecast, sentiment, optimize, got 'regression'"
    )
    assert _refused("sentiment", {"data": "x", "name": "n", "epochs": 3}) == (
        "unknown option 'epochs' for the sentiment template"
    )
    assert _refused("sentiment", {"name": "n"}) == "option 'data' (the data file) is required"
    assert _refused("credit", {"data": "x", "name": "n", "target": "t", "pii": "age"}) == (
        "option 'pii' must be a list of names"
    )
    assert _refused("credit", {"data": "x", "name": "n"}).startswith(
        "bad options for the credit template: "
    )
    credit = {"data": "x", "name": "n", "target": "t"}
    assert _refused("credit", {**credit, "folds": "five"}) == (
        "option 'folds' must be an integer, got 'five'"
    )
    assert (
        _refused("credit", {**credit, "seed": True}) == "option 'seed' must be an integer, got True"
    )
    assert _refused("credit", {**credit, "positive": 3}) == "option 'positive' must be text, got 3"
    assert _refused("credit", {**credit, "select": "accuracy"}) == (
        "option 'select' must be one of auc, ks, gini, brier, log_loss, expected_cost, "
        "got 'accuracy'"
    )
    assert _refused("credit", {**credit, "network": {"layers": 3}}) == (
        "bad options for the credit template: "
        "NetworkSettings.__init__() got an unexpected keyword argument 'layers'"
    )
    assert _refused("forecast", {"data": "x", "name": "n", "lags": 2.5}) == (
        "option 'lags' must be an integer, got 2.5"
    )


def test_jobs_are_stored_per_tenant_and_a_gone_worker_fails_the_job(registry: Registry) -> None:
    store = JobStore(registry)
    job = store.create("sentiment", {"data": "/x.csv", "name": "news"}, ALICE)
    assert (job.state, job.tenant, job.created_by, job.message) == (
        "queued",
        "retail",
        "local:alice",
        "queued",
    )
    assert store.get(job.id, tenant="retail").id == job.id
    with pytest.raises(NotFound):
        store.get(job.id, tenant="wholesale")
    assert [j.id for j in store.recent("retail")] == [job.id]
    assert store.recent("wholesale") == []
    assert store.actor(job.id) == Actor(
        "local:alice", role="developer", tenant="retail", origin=f"job:{job.id}"
    )

    # A queued job whose worker never started.
    _set(registry, job.id, created_at=registry.now() - timedelta(seconds=START_SECONDS + 1))
    failed = store.get(job.id)
    assert failed.state == "failed"
    assert failed.error == f"the job's worker did not start within {START_SECONDS:g} s"

    # A running job whose process is gone on this host.
    gone = store.create("sentiment", {"data": "/x.csv", "name": "news"}, ALICE)
    _set(registry, gone.id, state="running", host=socket.gethostname(), pid=_dead_pid())
    assert store.get(gone.id).error is not None
    assert store.get(gone.id).error.endswith("ended without finishing")  # type: ignore[union-attr]

    # A running job on another host that stopped beating.
    silent = store.create("sentiment", {"data": "/x.csv", "name": "news"}, ALICE)
    beat = registry.now() - timedelta(seconds=STALE_SECONDS + 1)
    _set(registry, silent.id, state="running", host="elsewhere", pid=1, heartbeat_at=beat)
    assert store.get(silent.id).state == "failed"
    assert store.get(silent.id).error.startswith("no heartbeat from the job's worker since ")  # type: ignore[union-attr]

    # The first ending wins.
    store.finish(silent.id, "succeeded", versions=[])
    assert store.get(silent.id).state == "failed"


def _set(registry: Registry, job_id: str, **values: Any) -> None:
    with registry.write() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_progress_is_written_now_and_then_and_the_log_is_bounded(registry: Registry) -> None:
    store = JobStore(registry)
    job = store.create("sentiment", {"data": "/x.csv", "name": "news"}, ALICE)
    now = [0.0]
    progress = JobProgress(store, job.id, clock=lambda: now[0])
    progress("reading")  # the first message is written at once
    assert store.get(job.id).message == "reading"
    progress("fold 1/5")  # within REPORT_SECONDS: kept, not yet written
    assert store.get(job.id).log == ["reading"]
    now[0] = 1.0
    progress("fold 2/5")
    assert store.get(job.id).log == ["reading", "fold 1/5", "fold 2/5"]
    for index in range(MAX_LOG_LINES + 10):
        progress(f"line {index} " + "x" * 1000)
    progress.flush()
    log = store.get(job.id).log
    assert len(log) == MAX_LOG_LINES
    assert log[-1].startswith(f"line {MAX_LOG_LINES + 9} ")
    assert max(map(len, log)) == 500


def _run_to_end(settings: Settings, template: str, options: dict[str, Any]) -> Any:
    registry = Registry.open(settings)
    try:
        store = JobStore(registry)
        job = store.create(template, options, ALICE)
        worker = launch(settings, job)
        try:
            ended = wait_until(lambda: has_exited(worker), 240)
        finally:
            code = stop_process(worker)
        assert ended, "the job's worker did not end in 240 s"
        assert code in (0, 1)
        return store.get(job.id), registry
    except BaseException:
        registry.close()
        raise


def test_a_worker_runs_a_job_to_its_registered_version(headlines: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    job, registry = _run_to_end(settings, "sentiment", {"data": str(headlines), "name": "news"})
    try:
        assert job.state == "succeeded", job.error
        assert job.error is None
        assert job.log[0] == "reading news.csv"
        assert job.log[-1] == "done"
        ((listed),) = job.versions
        assert (listed["model"], listed["version"], listed["staging"]) == ("news", 1, True)
        version = registry.get_version("news", 1)
        assert version.created_by == "local:alice"  # the job acts as who asked
        assert registry.get_model("news").tenant == "retail"
        assert version.lineage["data_sha256"]
    finally:
        registry.close()


def test_a_failing_job_says_why_and_registers_nothing(tmp_path: Path) -> None:
    data = tmp_path / "one-class.csv"
    generated_headlines(60).assign(label="neutral").to_csv(data, index=False)
    settings = Settings(home=tmp_path / "home")
    job, registry = _run_to_end(settings, "sentiment", {"data": str(data), "name": "news"})
    try:
        assert job.state == "failed"
        assert job.error == "column 'label' must hold two classes or more, got only 'neutral'"
        assert job.log[-1] == f"failed: {job.error}"
        with pytest.raises(NotFound):
            registry.get_model("news")
    finally:
        registry.close()


def test_a_killed_worker_fails_the_job_and_leaves_no_version(tmp_path: Path) -> None:
    data = tmp_path / "german.csv"
    load_german_credit().to_csv(data, index=False)
    settings = Settings(home=tmp_path / "home")
    registry = Registry.open(settings)
    try:
        store = JobStore(registry)
        options = {"data": str(data), "target": "creditability", "name": "german"}
        job = store.create("credit", options, ALICE)
        worker = launch(settings, job)
        try:  # killed while it trains its first candidate
            assert wait_until(lambda: "fold" in store.get(job.id).message, 180)
            worker.send_signal(signal.SIGKILL)
        finally:
            stop_process(worker)
        failed = store.get(job.id)
        assert failed.state == "failed"
        assert failed.error == (
            f"the job's worker process (pid {worker.pid}) ended without finishing"
        )
        with pytest.raises(NotFound):
            registry.get_model("german")
    finally:
        registry.close()


def test_the_cli_follows_detaches_and_attaches(
    headlines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--home", str(tmp_path / "home")]
    assert main([*base, "train", "sentiment", "--data", str(headlines), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "sentiment version 1: " in out
    assert "macro_f1 0." in out
    assert "staging → sentiment version 1" in out

    args = ["train", "sentiment", "--data", str(headlines), "--name", "later", "--detach"]
    assert main([*base, *args]) == 0
    started = capsys.readouterr().out
    assert started.startswith("job ")
    job_id = started.split()[1]
    assert started.endswith(f"follow it with: finmaas jobs attach {job_id}\n")
    assert main([*base, "jobs", "attach", job_id]) == 0
    assert "staging → later version 1" in capsys.readouterr().out
    assert main([*base, "jobs", "show", job_id]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"job {job_id}: sentiment, succeeded\n")
    assert "  done\n" in shown
    assert main([*base, "jobs", "list"]) == 0
    assert job_id in capsys.readouterr().out
    assert main([*base, "jobs", "show", "nope"]) == 1
    assert capsys.readouterr().err == "error: no job 'nope'\n"


def test_the_cli_reports_a_failed_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "words.txt"
    data.write_text("not a table\n")
    code = main(["--home", str(tmp_path / "home"), "train", "sentiment", "--data", str(data)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: job ")
    assert err.endswith(
        " failed: data file 'words.txt' is neither CSV nor Parquet: its first line has no "
        "delimiter (, ; tab |)\n"
    )
