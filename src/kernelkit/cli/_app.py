"""The typer application; each command lives in a module of its own."""

from __future__ import annotations

import typer

from kernelkit._version import __version__

app = typer.Typer(
    name="kernelkit",
    help="Find every Jupyter kernel, launch it, and talk to it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("version")
def version() -> None:
    """Print the kernelkit version."""
    typer.echo(__version__)


# Commands register themselves on `app` when their module is imported.
# (Add one import line per command module below.)
from kernelkit.cli import (  # noqa: E402, F401  (importing a command module registers it)
    _list,
    _run,
    _specs,
    _start,
)
