"""``finmaas serve``: the HTTP data plane (KServe V1, Open Inference Protocol V2)."""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Annotated, Any

import typer

from finmaas.cli.context import cli_context
from finmaas.config import Settings


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
) -> None:
    """Serve registered models over HTTP until stopped (SIGTERM drains in-flight requests)."""
    import uvicorn

    state = cli_context(ctx)
    flags: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "preload": preload,
        "max_model_memory": max_model_memory,
        "serve_model": model,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    settings = Settings(**{**state.settings.model_dump(exclude_unset=True), **given})
    state.settings = settings
    state.registry.list_models()  # fail fast: database reachable, fresh home created
    state.close()
    os.environ.update(settings.to_env())  # each worker builds the same Settings from these
    typer.echo(
        f"finmaas serving http://{settings.host}:{settings.port} "
        f"with {settings.workers} worker(s); home {settings.home}"
    )
    # uvicorn drains on SIGTERM/SIGINT, restores the handlers it found and re-raises the
    # signal; these no-op handlers turn that into a normal return, so a clean stop exits 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stopped)
    uvicorn.run(
        "finmaas.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
    )


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """Called when uvicorn re-raises the stop signal after draining."""
