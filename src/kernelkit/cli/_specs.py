"""``kernelkit specs list|install|remove``: Jupyter kernelspec directories."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.cli._app import app
from kernelkit.specs import (
    install_kernel_spec,
    kernel_spec_dirs,
    remove_kernel_spec,
    scan_kernel_specs,
)

__all__ = ["EXIT_FAILED", "EXIT_NOT_FOUND", "specs_app"]

#: Exit status when install or remove failed.
EXIT_FAILED = 1
#: Exit status of ``remove`` when a name is not installed.
EXIT_NOT_FOUND = 3

specs_app = typer.Typer(
    name="specs",
    help=(
        "Jupyter kernelspecs: list, install and remove kernel.json directories.\n\n"
        f"Exit status: 0 on success, {EXIT_FAILED} when an install or removal failed, "
        f"{EXIT_NOT_FOUND} when `remove` is given a name that is not installed, 2 on "
        "usage errors."
    ),
    no_args_is_help=True,
)
app.add_typer(specs_app)


def _error(message: str) -> None:
    Console(stderr=True).print(Text(message, style="red"))


@specs_app.command("list")
def list_specs(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print `jupyter kernelspec list --json`'s document: "
            '{"kernelspecs": {name: {"resource_dir", "spec"}}}, plus "problems" per spec.',
        ),
    ] = False,
) -> None:
    """List the kernelspecs in Jupyter's search path (first directory wins a name)."""
    specs = scan_kernel_specs()
    if as_json:
        doc = {
            "kernelspecs": {
                s.name: {
                    "resource_dir": str(s.resource_dir),
                    "spec": s.to_dict(),
                    "problems": list(s.problems),
                }
                for s in specs
            }
        }
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        return
    table = Table(title="Kernelspecs", title_justify="left")
    table.add_column("name", style="cyan")
    table.add_column("directory", overflow="fold")
    table.add_column("health", overflow="fold")
    for spec in specs:
        health = (
            Text("ok", style="green")
            if spec.healthy
            else Text("\n".join(spec.problems), style="red")
        )
        table.add_row(spec.name, str(spec.resource_dir), health)
    console = Console()
    if specs:
        console.print(table)
    else:
        console.print("No kernelspecs in: " + ", ".join(map(str, kernel_spec_dirs())))


@specs_app.command("install")
def install(
    source_dir: Annotated[
        Path, typer.Argument(help="A directory holding kernel.json (and logos).")
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Install under this name (default: the directory's)."),
    ] = None,
    user: Annotated[
        bool, typer.Option("--user", help="Into the user's Jupyter data directory.")
    ] = False,
    prefix: Annotated[
        Path | None, typer.Option("--prefix", help="Into PREFIX/share/jupyter/kernels.")
    ] = None,
    sys_prefix: Annotated[
        bool,
        typer.Option("--sys-prefix", help="Into this Python's prefix (sys.prefix)."),
    ] = False,
) -> None:
    """Install a kernelspec directory (replacing one of the same name)."""
    if sys_prefix:
        if prefix is not None:
            _error("give --prefix or --sys-prefix, not both")
            raise typer.Exit(2)
        prefix = Path(sys.prefix)
    try:
        path = install_kernel_spec(source_dir, kernel_name=name, user=user, prefix=prefix)
    except KernelSpecError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    typer.echo(f"Installed kernelspec {path.name} in {path}")


@specs_app.command("remove")
def remove(
    names: Annotated[list[str], typer.Argument(help="Kernelspec names to remove.")],
) -> None:
    """Remove kernelspecs by name (the directory a lookup finds first)."""
    status = 0
    for name in names:
        try:
            path = remove_kernel_spec(name)
        except NoSuchKernel as exc:
            _error(str(exc))
            status = max(status, EXIT_NOT_FOUND)
            continue
        except KernelSpecError as exc:
            _error(str(exc))
            status = EXIT_FAILED if status != EXIT_NOT_FOUND else status
            continue
        typer.echo(f"Removed {path}")
    if status:
        raise typer.Exit(status)
