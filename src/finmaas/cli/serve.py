"""``finmaas serve``: the HTTP data plane (KServe V1, Open Inference Protocol V2).

This process binds the port, then serves on it itself (one worker) or supervises
workers that share it (uvicorn's ``Multiprocess``); each worker stops when this
process exits, even when it was killed (see :func:`create_worker_app`).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finmaas.background import process_alive, stop_with_parent
from finmaas.cli.context import CliContext, cli_context
from finmaas.config import Settings
from finmaas.errors import Conflict, Invalid

if TYPE_CHECKING:
    from finmaas.app import FinmaasApp

APP = "finmaas.app:create_app"
WORKER_APP = "finmaas.cli.serve:create_worker_app"
"""The app factory each of several workers runs (uvicorn imports it by this name)."""
STOP_MARGIN = 15.0
"""Seconds beyond ``shutdown_timeout`` an orphaned worker gets to stop gracefully."""


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8080).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes sharing the port (default: one per core).")
    ] = None,
    preload: Annotated[
        bool | None, typer.Option("--preload/--lazy", help="Load aliased versions at start.")
    ] = None,
    max_model_memory: Annotated[
        int | None, typer.Option(help="Bytes of loaded models per worker (LRU beyond that).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="NAME[@alias] answered on MLflow's /invocations endpoint."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve WITHOUT API keys: every caller is an admin. Laptop demos only; audited.",
        ),
    ] = False,
    single_approver: Annotated[
        bool,
        typer.Option(
            "--single-approver",
            help="Relax four-eyes: a version's author may approve it. Audited.",
        ),
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis URL for limits and quotas exact across workers and hosts."),
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="PEM certificate: serve HTTPS.", exists=True, dir_okay=False)
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --ssl-certfile.", exists=True, dir_okay=False),
    ] = None,
    access_log: Annotated[
        str | None,
        typer.Option(help="One JSON line per request: stdout (default), off, or a file."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Browser origin allowed to call the API (https://app.bank.example). Repeatable; "
            "CORS is off without it."
        ),
    ] = None,
) -> None:
    """Serve registered models over HTTP until stopped (SIGTERM drains in-flight requests)."""
    state = cli_context(ctx)
    flags: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "preload": preload,
        "max_model_memory": max_model_memory,
        "serve_model": model,
        "insecure_no_auth": insecure_no_auth or None,
        "single_approver": single_approver or None,
        "redis_url": redis_url,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        "cors_origins": ",".join(cors_origin) if cors_origin else None,
        "access_log": access_log,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    settings = Settings(**{**state.settings.model_dump(exclude_unset=True), **given})
    state.settings = settings
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise typer.BadParameter("give both --ssl-certfile and --ssl-keyfile, or neither")
    state.registry.list_models()  # fail fast: database reachable, fresh home created
    sock = _listen(settings.host, settings.port)  # a port in use: before the audit and banner
    try:
        _serve(state, settings, sock)
    finally:
        sock.close()


def _serve(state: CliContext, settings: Settings, sock: socket.socket) -> None:
    relaxed = {
        name: True for name in ("insecure_no_auth", "single_approver") if getattr(settings, name)
    }
    if relaxed:
        actor = state.actor  # no object: the entry is the (local admin) operator's tenant's
        state.registry.record_event(
            actor, "server.start", "settings", tenant=actor.tenant, after=relaxed
        )
    if settings.insecure_no_auth:
        typer.echo(
            "WARNING: authentication is DISABLED (--insecure-no-auth); every caller is an admin",
            err=True,
        )
    state.close()
    if settings.workers > 1 and settings.metrics_dir is None:
        settings = settings.model_copy(update={"metrics_dir": _metrics_dir(settings.home)})
    os.environ.update(settings.to_env())  # each worker builds the same Settings from these
    scheme = "https" if settings.ssl_certfile else "http"
    url = f"{scheme}://{_address(settings.host, settings.port)}"
    typer.echo(f"finmaas serving {url} with {settings.workers} worker(s); home {settings.home}")
    # uvicorn drains on SIGTERM/SIGINT, restores the handlers it found and re-raises the
    # signal; these no-op handlers turn that into a normal return, so a clean stop exits 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stopped)
    try:
        _run(settings, sock)
    finally:
        if settings.metrics_dir is not None:
            shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    typer.echo(f"finmaas stopped serving {url}")


def create_worker_app() -> FinmaasApp:
    """The app of one of several workers, which stops when its supervisor (the
    ``finmaas serve`` process) exits, however it exits (:func:`stop_with_parent`)."""
    from finmaas.app import create_app

    app = create_app()
    stop_with_parent(grace=app.settings.shutdown_timeout + STOP_MARGIN)
    return app


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything is printed or recorded; the workers
    inherit it (uvicorn calls ``listen`` in each)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: past TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(
                f"port {_address(host, port)} is already in use (another finmaas serve?)"
            ) from None
        raise Invalid(f"cannot listen on {_address(host, port)}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _run(settings: Settings, sock: socket.socket) -> None:
    """Serve on ``sock``: in this process for one worker, else in supervised workers."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        WORKER_APP if settings.workers > 1 else APP,
        factory=True,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        timeout_worker_healthcheck=settings.worker_healthcheck_timeout,
        server_header=False,  # no "server: uvicorn": say nothing about the stack
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)  # as uvicorn.run: the app failed to start


def _metrics_dir(home: Path) -> Path:
    """A fresh folder where this server's workers share metrics; folders that servers
    which are gone left behind are removed."""
    run = home / "run"
    for old in run.glob("metrics-*"):
        pid = old.name.removeprefix("metrics-")
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = run / f"metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    return folder


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """Called when uvicorn re-raises the stop signal after draining."""
