"""Entry point: ``finmaas [--home DIR] [--database-url URL] [--debug] COMMAND``.

Errors are printed as one line, ``error: <message>``, with exit code 1 (2 for
usage errors); ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from finmaas import __version__
from finmaas.cli import (
    audit,
    db,
    decisions,
    drift,
    explain,
    keys,
    log,
    models,
    optimize,
    quickstart,
    serve,
    signature,
    train,
    usage,
)
from finmaas.cli.context import CliContext
from finmaas.config import Settings
from finmaas.errors import FinmaasError

app = typer.Typer(
    name="finmaas",
    help="Self-hosted Model-as-a-Service for financial models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(signature.app, name="signature")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(decisions.app, name="decisions")
app.add_typer(log.app, name="log")
app.add_typer(train.app, name="train")
app.add_typer(train.jobs_app, name="jobs")
app.command("usage")(usage.usage)
app.command("explain")(explain.explain)
app.command("drift")(drift.drift)
app.command("serve")(serve.serve)
app.command("quickstart")(quickstart.quickstart)
app.command("optimize")(optimize.optimize)
app.command("convert")(optimize.convert)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finmaas {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="Home folder (default ~/.finmaas; env FINMAAS_HOME).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Metadata database URL (default SQLite in the home; env FINMAAS_DATABASE_URL)."
        ),
    ] = None,
    artifacts_dir: Annotated[
        Path | None,
        typer.Option(
            help="Artifact store folder (default <home>/artifacts; env FINMAAS_ARTIFACTS_DIR)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    overrides: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "artifacts_dir": artifacts_dir,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    state = CliContext(settings=settings, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Standalone mode prints usage errors and --help itself and exits; our
        # own errors propagate to here.
        app(args=args, prog_name="finmaas")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except FinmaasError as exc:
        _fail(str(exc), debug)
        return 1
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"])
        _fail(f"invalid setting {field} (FINMAAS_{field.upper()}): {error['msg']}", debug)
        return 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", debug)
        return 1
    return 0


def _fail(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    typer.echo(f"error: {message}", err=True)


def run() -> None:
    sys.exit(main())
