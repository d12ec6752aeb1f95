"""The typer application: every command declared here, thin; each one's work in its own
module, imported when that command runs.

Start-up time is the reason: the implementations pull in asyncio, pyzmq, the client,
the manager, discovery and rich, and ``kernelkit --help`` or ``kernelkit list --json``
should pay only for what they use. So the declarations (options, types, help) are
complete here, and each command body imports its implementation module. These
function-level imports are for start-up time only, not to dodge an import cycle: the
implementation modules never import this one.

Help and usage errors are rendered by click's plain formatter (``rich_markup_mode=None``):
typer's rich help imports rich's console, markdown and traceback machinery, which alone
took longer than the rest of ``kernelkit --help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kernelkit._version import __version__
from kernelkit.cli._servers import servers_app
from kernelkit.cli._status import (
    EXIT_BROKEN,
    EXIT_CODE_RAISED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)

__all__ = ["LIST_JSON_SCHEMA", "app", "specs_app"]

app = typer.Typer(
    name="kernelkit",
    help="Find every Jupyter kernel, launch it, and talk to it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _exit(status: int) -> None:
    if status:
        raise typer.Exit(status)


@app.command("version")
def version() -> None:
    """Print the kernelkit version."""
    typer.echo(__version__)


# -- list -------------------------------------------------------------------------------

LIST_JSON_SCHEMA = """\
{"kernelspecs": {            one entry per kernel type, keyed by id
   "<id>": {
     "id": "env/myenv-1a2b3c4d/python3",    <provider>/<name>
     "name": "python3",                     its own name (the id's end)
     "provider": "env",                     spec, env, or a plugin's name
     "origin": "kernelspec",                | interpreter | environment
     "display_name": "...", "language": "python",
     "resource_dir": "/path" | null,        as jupyter kernelspec list
     "spec": {argv, env, display_name,      the kernel.json, as jupyter
              language, interrupt_mode,     kernelspec list --json has it
              metadata, ...} | null,
     "healthy": true,
     "problems": ["why it is broken"],
     "aliases": ["spec/python3"],           same kernel, other ids
     "environment": {id, name, kind, prefix, interpreter,
                     python_version, has_ipykernel} | null}},
 "problems": [{"provider", "reason", "source"}]}   failed providers"""

_LIST_HELP = (
    "List every kernel on this machine: Jupyter kernelspecs, Python and conda "
    "environments (their kernelspecs and their interpreters), and plugins.\n\n"
    "Reads the filesystem only: nothing is started. The ids shown are what "
    "`kernelkit run --kernel` and `kernelkit start --kernel` take.\n\n"
    "Exit status: 0 when listed (broken kernels are shown, not an error); with "
    f"--broken, {EXIT_BROKEN} when anything is broken (kernels or providers), else 0.\n\n"
    "--json prints this document (same spec fields as `jupyter kernelspec list "
    "--json`, keyed by id; e.g. `kernelkit list --json | jq -r '.kernelspecs[] | "
    "select(.healthy) | .id'`):\n\n\b\n" + LIST_JSON_SCHEMA
)


@app.command(
    "list", help=_LIST_HELP, short_help="List every kernel on this machine, and its health."
)
def list_kernels(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for tools (schema above).")
    ] = False,
    broken: Annotated[
        bool, typer.Option("--broken", help="Show only what is broken, and why.")
    ] = False,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit", help="Seconds each provider may take.", min=0.1, metavar="SECONDS"
        ),
    ] = 5.0,
) -> None:
    from kernelkit.cli._list import list_command  # start-up time (see the module docstring)

    _exit(list_command(as_json=as_json, broken=broken, time_limit=time_limit))


# -- run and start ----------------------------------------------------------------------

_KERNEL_HELP = (
    "The kernel: an id from `kernelkit list` (spec/python3, env/<env-id>/python3, or a "
    "plugin's), or a kernelspec name."
)


_OUTPUT_HELP = "A notebook: write the executed notebook here (default: back into it)."

_RUN_HELP = (
    "Run code in a new kernel, showing its output as it comes; then stop the kernel.\n\n"
    "A notebook (FILE.ipynb) runs every cell in the kernel it names or finds (see "
    "`kernelkit which`), and its outputs are written back (or to --output).\n\n"
    "An environment's kernel runs with that environment activated. Ctrl-C interrupts the "
    "kernel; a second Ctrl-C stops it.\n\n"
    f"Exit status: 0 when the code ran, {EXIT_CODE_RAISED} when it raised, "
    f"{EXIT_KERNEL_FAILED} when the kernel could not be found or started, "
    f"{EXIT_KERNEL_DIED} when it died, {EXIT_INTERRUPTED} when interrupted."
)


@app.command("run", help=_RUN_HELP, short_help="Run code in a new kernel, streaming its output.")
def run(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A file of code to run ('-' reads standard input).",
            show_default=False,
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option("-c", "--code", help="The code to run.", show_default=False, metavar="CODE"),
    ] = None,
    kernel: Annotated[
        str | None,
        typer.Option("--kernel", "-k", help=_KERNEL_HELP + " Default: python3.", metavar="ID"),
    ] = None,
    startup_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the kernel to be ready.", metavar="SECONDS"),
    ] = 60.0,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help=_OUTPUT_HELP, show_default=False, metavar="NOTEBOOK"),
    ] = None,
) -> None:
    if file is not None and file.suffix.lower() == ".ipynb":  # cli/_notebook.py (issue 11)
        from kernelkit.cli._notebook import run_notebook_command

        if code is not None:
            raise typer.BadParameter("give either -c CODE or a FILE (not both)")

        _exit(
            run_notebook_command(
                file, kernel=kernel, output=output, startup_timeout=startup_timeout
            )
        )
        return
    if output is not None:
        raise typer.BadParameter("--output is for notebooks (FILE.ipynb)")
    from kernelkit.cli._run import run_command  # start-up time (see the module docstring)

    _exit(
        run_command(
            kernel=kernel or "python3", code=code, file=file, startup_timeout=startup_timeout
        )
    )


_START_HELP = (
    "Start a kernel, print its connection file, and keep it running until Ctrl-C.\n\n"
    "A kernel that dies is reported (exit code, last output) and restarted on the same "
    "connection file. An environment's kernel runs with that environment activated.\n\n"
    f"Exit status: 0 after Ctrl-C, {EXIT_KERNEL_FAILED} when the kernel could not be found "
    f"or started, {EXIT_KERNEL_DIED} when it died and could not be restarted."
)


@app.command(
    "start",
    help=_START_HELP,
    short_help="Start a kernel for other clients; supervise it until Ctrl-C.",
)
def start(
    kernel: Annotated[
        str, typer.Option("--kernel", "-k", help=_KERNEL_HELP, metavar="ID")
    ] = "python3",
    startup_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the kernel to be ready.", metavar="SECONDS"),
    ] = 60.0,
    restart_limit: Annotated[
        int,
        typer.Option(
            help="Restarts in a row (each dying within 10 s) before giving up.", metavar="N"
        ),
    ] = 5,
) -> None:
    from kernelkit.cli._start import start_command  # start-up time (see the module docstring)

    _exit(
        start_command(kernel=kernel, startup_timeout=startup_timeout, restart_limit=restart_limit)
    )


_WHICH_HELP = (
    "Print the kernel a notebook runs in (`kernelkit run NOTEBOOK`), and why: the kernel "
    "kernelkit recorded in it, else the kernelspec its metadata names, else the nearest "
    "project environment (.venv, .pixi, the conda env an environment.yml names, from the "
    "notebook's folder up), else a kernel of its language. Nothing is started.\n\n"
    f"Exit status: 0 when a kernel was chosen, {EXIT_KERNEL_FAILED} when none fits."
)


@app.command("which", help=_WHICH_HELP, short_help="Print the kernel a notebook runs in, and why.")
def which(
    notebook: Annotated[Path, typer.Argument(help="A notebook (.ipynb).")],
    kernel: Annotated[
        str | None, typer.Option("--kernel", "-k", help=_KERNEL_HELP, metavar="ID")
    ] = None,
) -> None:
    from kernelkit.cli._notebook import which_command  # start-up time (module docstring)

    _exit(which_command(notebook, kernel=kernel))


# -- specs ------------------------------------------------------------------------------

specs_app = typer.Typer(
    name="specs",
    help=(
        "Jupyter kernelspecs: list, install and remove kernel.json directories.\n\n"
        f"Exit status: 0 on success, {EXIT_FAILED} when an install or removal failed, "
        f"{EXIT_NOT_FOUND} when `remove` is given a name that is not installed, "
        f"{EXIT_USAGE} on usage errors."
    ),
    short_help="Jupyter kernelspecs: list, install, remove.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(specs_app)


@specs_app.command("list", short_help="List the kernelspecs in Jupyter's search path.")
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
    from kernelkit.cli._specs import list_specs_command  # start-up time (module docstring)

    _exit(list_specs_command(as_json=as_json))


@specs_app.command("install")
def install(
    source_dir: Annotated[
        Path,
        typer.Argument(help="A directory holding kernel.json (and logos)."),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Install under this name (default: the directory's).", metavar="NAME"
        ),
    ] = None,
    user: Annotated[
        bool, typer.Option("--user", help="Into the user's Jupyter data directory.")
    ] = False,
    prefix: Annotated[
        Path | None,
        typer.Option("--prefix", help="Into PREFIX/share/jupyter/kernels.", metavar="PREFIX"),
    ] = None,
    sys_prefix: Annotated[
        bool,
        typer.Option("--sys-prefix", help="Into this Python's prefix (sys.prefix)."),
    ] = False,
) -> None:
    """Install a kernelspec directory (replacing one of the same name)."""
    from kernelkit.cli._specs import install_command  # start-up time (module docstring)

    _exit(install_command(source_dir, name=name, user=user, prefix=prefix, sys_prefix=sys_prefix))


@specs_app.command("remove")
def remove(
    names: Annotated[list[str], typer.Argument(help="Kernelspec names to remove.")],
) -> None:
    """Remove kernelspecs by name (the directory a lookup finds first)."""
    from kernelkit.cli._specs import remove_command  # start-up time (module docstring)

    _exit(remove_command(names))


app.add_typer(servers_app)  # kernelkit servers add|list|remove (cli/_servers.py)
