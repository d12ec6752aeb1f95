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
from kernelkit.cli._hosts import hosts_app
from kernelkit.cli._sandbox import SANDBOX_HELP
from kernelkit.cli._servers import SERVER_HELP, servers_app, use_server
from kernelkit.cli._status import (
    EXIT_BROKEN,
    EXIT_CODE_RAISED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_NOT_FOUND,
    EXIT_TIMEOUT,
    EXIT_USAGE,
)

__all__ = ["LIST_JSON_SCHEMA", "app", "specs_app"]

app = typer.Typer(
    name="kernelkit",
    help="Find every Jupyter kernel, launch it, and talk to it.",
    no_args_is_help=True,
    # --install-completion / --show-completion (bash, zsh, fish): commands, options and
    # kernel ids (the callbacks below).
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _exit(status: int) -> None:
    if status:
        raise typer.Exit(status)


def _complete_kernel(incomplete: str) -> list[str]:
    """Shell completion: the ids of the kernels `kernelkit list` shows (and their names)."""
    from kernelkit.discovery import KernelFinder  # start-up time

    ids = [k.id for k in KernelFinder(time_limit=2.0).find().kernels]
    return [i for i in ids if i.startswith(incomplete)]


def _complete_running(incomplete: str) -> list[str]:
    """Shell completion: the ids of the connection files in the runtime directory."""
    from kernelkit.cli._running import runtime_kernels  # start-up time

    return [k.kernel_id for k in runtime_kernels()[0] if k.kernel_id.startswith(incomplete)]


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
    server: Annotated[
        str | None, typer.Option("--server", help=SERVER_HELP, metavar="URL", show_default=False)
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also the Python interpreters that cannot run a kernel yet (no ipykernel), "
            'with the command that adds one (JSON: "without_kernel").',
        ),
    ] = False,
) -> None:
    from kernelkit.cli._list import list_command  # start-up time (see the module docstring)

    use_server(server, "")
    _exit(list_command(as_json=as_json, broken=broken, time_limit=time_limit, show_all=show_all))


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
    f"{EXIT_KERNEL_DIED} when it died, {EXIT_TIMEOUT} when it ran past --timeout, "
    f"{EXIT_INTERRUPTED} when interrupted.\n\n"
    "input() in the code reads this command's standard input when it is not a terminal "
    "(one line per call; end of input raises EOFError)."
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
        typer.Option(
            "--kernel",
            "-k",
            help=_KERNEL_HELP + " Default: python3.",
            metavar="ID",
            autocompletion=_complete_kernel,
        ),
    ] = None,
    startup_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the kernel to be ready.", metavar="SECONDS"),
    ] = 60.0,
    server: Annotated[
        str | None, typer.Option("--server", help=SERVER_HELP, metavar="URL", show_default=False)
    ] = None,
    sandbox: Annotated[bool, typer.Option("--sandbox", help=SANDBOX_HELP)] = False,
    network: Annotated[
        bool, typer.Option("--network/--no-network", help="Sandbox: allow the network.")
    ] = False,
    memory: Annotated[
        str | None, typer.Option(help="Sandbox: memory limit (512M).", metavar="SIZE")
    ] = None,
    processes: Annotated[
        int | None, typer.Option(help="Sandbox: process limit.", metavar="N")
    ] = None,
    cpu_time: Annotated[
        float | None, typer.Option(help="Sandbox: CPU seconds per process.", metavar="SECONDS")
    ] = None,
    file_size: Annotated[
        str | None, typer.Option(help="Sandbox: largest file it may write.", metavar="SIZE")
    ] = None,
    wall_clock: Annotated[
        float | None, typer.Option(help="Sandbox: seconds per execution.", metavar="SECONDS")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Sandbox: its writable work directory.", metavar="DIR")
    ] = None,
    ro: Annotated[
        list[Path] | None, typer.Option(help="Sandbox: a path to see read-only.", metavar="PATH")
    ] = None,
    rw: Annotated[
        list[Path] | None, typer.Option(help="Sandbox: a path to write to.", metavar="PATH")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help=_OUTPUT_HELP, show_default=False, metavar="NOTEBOOK"),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="Set an environment variable in the kernel (repeatable).",
            metavar="NAME=VALUE",
            show_default=False,
        ),
    ] = None,
    cwd: Annotated[
        Path | None,
        typer.Option(help="The kernel's working directory.", metavar="DIR", show_default=False),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help=f"Interrupt the code after SECONDS and exit {EXIT_TIMEOUT} "
            "(the kernel is stopped if the interrupt does not end it).",
            metavar="SECONDS",
            min=0.0,
            show_default=False,
        ),
    ] = None,
    save_outputs: Annotated[
        Path | None,
        typer.Option(
            help="Write each rich display output (PNG, SVG, HTML, JSON, ...) into DIR as "
            "001.png, 002.html, ... in output order.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print every message of the request as one JSON object a line (channel, "
            "msg_type, header, parent_header, metadata, content), the reply last.",
        ),
    ] = False,
    existing: Annotated[
        str | None,
        typer.Option(
            help="Run in a running kernel (an id from `kernelkit ps`, a unique start of "
            "one, or a connection file) and leave it running.",
            metavar="ID|FILE",
            show_default=False,
            autocompletion=_complete_running,
        ),
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
    from kernelkit.cli._run import RunOptions, parse_env, run_command  # start-up time
    from kernelkit.cli._sandbox import sandbox_option

    options = RunOptions(
        kernel=use_server(server, kernel or "python3"),
        startup_timeout=startup_timeout,
        env=parse_env(env or []),
        cwd=cwd,
        timeout=timeout,
        save_outputs=save_outputs,
        as_json=as_json,
        existing=existing,
        sandbox=sandbox_option(
            sandbox=sandbox,
            network=network,
            memory=memory,
            processes=processes,
            cpu_time=cpu_time,
            file_size=file_size,
            wall_clock=wall_clock,
            work_dir=work_dir,
            ro=ro,
            rw=rw,
        ),
    )
    _exit(run_command(code=code, file=file, options=options))


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
        str,
        typer.Option(
            "--kernel", "-k", help=_KERNEL_HELP, metavar="ID", autocompletion=_complete_kernel
        ),
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
    server: Annotated[
        str | None, typer.Option("--server", help=SERVER_HELP, metavar="URL", show_default=False)
    ] = None,
) -> None:
    from kernelkit.cli._start import start_command  # start-up time (see the module docstring)

    kernel = use_server(server, kernel)
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


# -- console (cli/_console.py) ----------------------------------------------------------

_CONSOLE_HELP = (
    "An interactive console on a kernel: a new one (--kernel), stopped when you leave, "
    "or a running one (--existing), left running.\n\n"
    "Tab completes from the kernel; Enter runs the code once the kernel says it is "
    "complete (Alt-Enter runs it anyway); Up/Down walk the history (the kernel's and "
    "a local file's); Ctrl-C interrupts running code; Ctrl-D leaves. Images are saved "
    "to files and their paths shown.\n\n"
    f"Exit status: 0 after Ctrl-D, {EXIT_KERNEL_FAILED} when the kernel could not be "
    f"found, started or reached, {EXIT_KERNEL_DIED} when it died and was not restarted."
)


@app.command("console", help=_CONSOLE_HELP, short_help="An interactive console on a kernel.")
def console(
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel", "-k", help=_KERNEL_HELP, metavar="ID", autocompletion=_complete_kernel
        ),
    ] = "python3",
    existing: Annotated[
        str | None,
        typer.Option(
            help="A running kernel instead: an id from `kernelkit ps`, a unique start of "
            "one, or a connection file.",
            metavar="ID|FILE",
            show_default=False,
            autocompletion=_complete_running,
        ),
    ] = None,
    startup_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the kernel to be ready.", metavar="SECONDS"),
    ] = 60.0,
) -> None:
    from kernelkit.cli._console import console_command  # start-up time (module docstring)

    _exit(console_command(kernel=kernel, existing=existing, startup_timeout=startup_timeout))


# -- running kernels: ps, stop, interrupt (cli/_ps.py) ----------------------------------

_ID_HELP = "A kernel id from `kernelkit ps`, a unique start of one, or a connection file."


@app.command("ps", short_help="List the running kernels of this user, and their state.")
def ps(
    clean: Annotated[
        bool,
        typer.Option("--clean", help="Remove the connection files of dead kernels."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for tools.")] = False,
) -> None:
    """List the running kernels of this user: every connection file in Jupyter's runtime
    directory, asked whether its kernel lives (idle, busy, unresponsive, dead), with what
    kernelkit recorded about the kernels it started (type, owner process)."""
    from kernelkit.cli._ps import ps_command  # start-up time (see the module docstring)

    _exit(ps_command(clean=clean, as_json=as_json))


@app.command("stop", short_help="Stop a running kernel.")
def stop(
    kernel_id: Annotated[
        str, typer.Argument(help=_ID_HELP, metavar="ID", autocompletion=_complete_running)
    ],
) -> None:
    """Stop a running kernel: through the kernelkit command that supervises it, else a
    shutdown request, then signals to its process when kernelkit started it.

    Exit status: 0 when stopped (or already dead), 1 when it could not be stopped,
    3 when no running kernel has that id."""
    from kernelkit.cli._ps import stop_command  # start-up time (see the module docstring)

    _exit(stop_command(kernel_id))


@app.command("interrupt", short_help="Interrupt what a running kernel is doing.")
def interrupt(
    kernel_id: Annotated[
        str, typer.Argument(help=_ID_HELP, metavar="ID", autocompletion=_complete_running)
    ],
) -> None:
    """Interrupt a running kernel (SIGINT to its process group, or an interrupt_request).

    Exit status: 0 when interrupted, 1 when it could not be, 3 when no running kernel
    has that id."""
    from kernelkit.cli._ps import interrupt_command  # start-up time (see the module docstring)

    _exit(interrupt_command(kernel_id))


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


# -- env (cli/_env.py) ------------------------------------------------------------------

env_app = typer.Typer(
    name="env",
    help="Python and conda environments: make one that has no kernel yet able to run one.",
    short_help="Environments: add a kernel to one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(env_app)


@env_app.command("add-kernel")
def add_kernel(
    env: Annotated[
        str,
        typer.Argument(
            help="The environment: its id from `kernelkit list --all`, its name, or its "
            "prefix path.",
            metavar="ENV",
        ),
    ],
) -> None:
    """Install ipykernel into an environment (uv when on PATH, else its pip), so that it
    is listed as env/ENV/python3. A failed install is rolled back.

    Exit status: 0 when installed (or already there), 1 when it could not be, 3 when no
    environment matches ENV."""
    from kernelkit.cli._env import add_kernel_command  # start-up time (module docstring)

    _exit(add_kernel_command(env))


app.add_typer(servers_app)  # kernelkit servers add|list|remove (cli/_servers.py)
app.add_typer(hosts_app)  # kernelkit hosts add|list|remove (cli/_hosts.py)
