"""Entry point: ``finmaas [--home DIR] [--database-url URL] [--debug] COMMAND``.

Errors are printed as one line, ``error: <message>``, with exit code 1 (2 for
usage errors); ``--debug`` shows the traceback too.

This module imports nothing at the top: it is the ``finmaas`` script's module, so
every ``finmaas serve`` worker re-imports it when uvicorn spawns the worker
(multiprocessing ``spawn`` re-runs the parent's ``__main__``) before the worker
can answer the supervisor's health check (issue 18, item 6). The command line
itself lives in :mod:`finmaas.cli.root`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import typer
    from pydantic import ValidationError

    from finmaas.cli.root import app
    from finmaas.errors import FinmaasError

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
    import traceback

    import typer

    if debug:
        traceback.print_exc()
    typer.echo(f"error: {message}", err=True)


def run() -> None:
    sys.exit(main())
