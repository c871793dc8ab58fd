"""``finmaas serve``: the HTTP server (data plane and control plane)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from finmaas.cli.context import cli_context
from finmaas.config import Settings
from finmaas.errors import Unavailable


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8080).")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default 1).")] = None,
) -> None:
    """Serve the registered models over HTTP (KServe V1, Open Inference Protocol V2)."""
    state = cli_context(ctx)
    flags: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    given = {key: value for key, value in flags.items() if value is not None}
    settings = Settings(**{**state.settings.model_dump(exclude_unset=True), **given})
    state.settings = settings
    state.registry.list_models()  # opens the store and creates a fresh home, as the server will
    raise Unavailable(
        "the HTTP data plane is not part of this release yet; `finmaas serve` will listen on "
        f"http://{settings.host}:{settings.port} with {settings.workers} worker(s) once it lands"
    )
