"""``kernelkit list``: every kernel on this machine, from every provider, and its health."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kernelkit.cli._app import app
from kernelkit.discovery import DiscoveryProblem, FindResult, KernelFinder, KernelType

__all__ = [
    "EXIT_BROKEN",
    "kernel_to_json",
    "listing_to_json",
]

#: Exit status of ``kernelkit list --broken`` when something is broken.
EXIT_BROKEN = 1

_PROVIDER_TITLES = {
    "spec": "Jupyter kernelspec directories",
    "env": "Python and conda environments",
}

JSON_SCHEMA = """\
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


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def kernel_to_json(kernel: KernelType) -> dict[str, Any]:
    """One kernel type as the ``kernelspecs`` entry of ``kernelkit list --json``."""
    env = kernel.environment
    return {
        "id": kernel.id,
        "name": kernel.name.rsplit("/", 1)[-1],
        "provider": kernel.provider,
        "origin": kernel.origin,
        "display_name": kernel.display_name,
        "language": kernel.language,
        "resource_dir": _path(kernel.spec.resource_dir if kernel.spec else kernel.source),
        "spec": kernel.spec.to_dict() if kernel.spec is not None else None,
        "healthy": kernel.healthy,
        "problems": list(kernel.problems),
        "aliases": list(kernel.aliases),
        "environment": None
        if env is None
        else {
            "id": env.id,
            "name": env.name,
            "kind": env.kind,
            "prefix": str(env.prefix),
            "interpreter": _path(env.interpreter),
            "python_version": env.python_version,
            "has_ipykernel": env.has_ipykernel,
        },
    }


def _problem_to_json(problem: DiscoveryProblem) -> dict[str, str]:
    return {"provider": problem.provider, "reason": problem.reason, "source": problem.source}


def listing_to_json(result: FindResult, *, broken_only: bool = False) -> dict[str, Any]:
    """The ``kernelkit list --json`` document (schema: ``kernelkit list --help``)."""
    kernels = result.broken if broken_only else result.kernels
    return {
        "kernelspecs": {k.id: kernel_to_json(k) for k in kernels},
        "problems": [_problem_to_json(p) for p in result.problems],
    }


def _short(path: Path | None) -> str:
    if path is None:
        return ""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def _location(kernel: KernelType) -> str:
    if kernel.environment is not None and kernel.provider == "env":
        return _short(kernel.environment.prefix)
    return _short(kernel.source)


def _health(kernel: KernelType) -> Text:
    if kernel.healthy:
        return Text("ok", style="green")
    return Text("\n".join(kernel.problems), style="red")


def _render(console: Console, result: FindResult, *, broken_only: bool) -> None:
    kernels = result.broken if broken_only else result.kernels
    groups: dict[str, list[KernelType]] = {}
    for kernel in kernels:
        groups.setdefault(kernel.provider, []).append(kernel)
    for provider, members in groups.items():
        title = _PROVIDER_TITLES.get(provider, f"provider {provider!r}")
        table = Table(title=f"{provider}: {title}", title_justify="left", expand=False)
        table.add_column("id", style="cyan", overflow="fold")
        table.add_column("display name", overflow="fold")
        table.add_column("language")
        table.add_column("location", overflow="fold")
        table.add_column("health", overflow="fold")
        for kernel in members:
            table.add_row(
                kernel.id,
                kernel.display_name,
                kernel.language,
                _location(kernel),
                _health(kernel),
            )
        console.print(table)
    if result.problems:
        console.print(Text("Providers that failed:", style="bold red"))
        for problem in result.problems:
            console.print(Text(f"  {problem.provider}: {problem.reason}", style="red"))
    if not kernels and not result.problems:
        console.print("Nothing is broken." if broken_only else "No kernels found.")
    elif not broken_only:
        healthy = len(result.healthy)
        console.print(
            f"{len(kernels)} kernels ({healthy} ok, {len(kernels) - healthy} broken)"
            + (f"; {len(result.problems)} provider problems" if result.problems else ""),
            style="dim",
        )


def _list_help() -> str:
    return (
        "List every kernel on this machine: Jupyter kernelspecs, Python and conda "
        "environments (their kernelspecs and their interpreters), and plugins.\n\n"
        "Reads the filesystem only: nothing is started.\n\n"
        "Exit status: 0 when listed (broken kernels are shown, not an error); with "
        f"--broken, {EXIT_BROKEN} when anything is broken (kernels or providers), else 0.\n\n"
        "--json prints this document (same spec fields as `jupyter kernelspec list "
        "--json`, keyed by id; e.g. `kernelkit list --json | jq -r '.kernelspecs[] | "
        "select(.healthy) | .id'`):\n\n\b\n" + JSON_SCHEMA
    )


@app.command("list", help=_list_help())
def list_kernels(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for tools (schema above).")
    ] = False,
    broken: Annotated[
        bool, typer.Option("--broken", help="Show only what is broken, and why.")
    ] = False,
    time_limit: Annotated[
        float,
        typer.Option("--time-limit", help="Seconds each provider may take.", min=0.1),
    ] = 5.0,
) -> None:
    finder = KernelFinder(time_limit=time_limit)
    result = finder.find()
    if as_json:
        sys.stdout.buffer.write(
            orjson.dumps(listing_to_json(result, broken_only=broken), option=orjson.OPT_INDENT_2)
            + b"\n"
        )
    else:
        _render(Console(), result, broken_only=broken)
    if broken and (result.broken or result.problems):
        raise typer.Exit(EXIT_BROKEN)
