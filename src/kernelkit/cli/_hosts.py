"""``kernelkit hosts add|list|refresh|remove``: the machines kernelkit runs kernels on over
SSH (``ssh/<host>/<kernel>``, through a nanny there).

Declared and implemented here (one module, registered in ``_app`` with ``add_typer``);
the registry is imported only when a command runs. Nothing secret is stored: ssh uses
your own configuration, keys and agent, and never asks for a password.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from kernelkit.cli._status import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE

__all__ = ["hosts_app"]

hosts_app = typer.Typer(
    name="hosts",
    help=(
        "Machines kernelkit starts kernels on over SSH (ids ssh/<host>/<kernelspec> and "
        "ssh/<host>/env/<env-id>/<name>), each under a nanny on that machine; kernelkit "
        "must be installed there. Their kernels are listed when a host is added and by "
        "`kernelkit hosts refresh`, and kept: `kernelkit list` never waits on ssh.\n\n"
        "Stored in the Jupyter config directory (kernelkit/hosts.json; $KERNELKIT_HOSTS_DIR "
        "overrides it). Only the address, the Python to run and an optional ssh_config "
        "file are stored: ssh logs in with your keys or agent (BatchMode), never a "
        "password.\n\n"
        f"Exit status: 0 on success, {EXIT_FAILED} when the hosts file cannot be read or "
        "written or `refresh` could not list a host (`add` registers it anyway), "
        f"{EXIT_NOT_FOUND} when `remove` or `refresh` is given an unknown name, {EXIT_USAGE} "
        "on bad input."
    ),
    short_help="SSH hosts to run kernels on: add, list, refresh, remove.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _error(message: str, status: int) -> NoReturn:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text(message, style="red"), highlight=False, soft_wrap=True)
    raise typer.Exit(status)


@hosts_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name, used in ids: ssh/NAME/...")],
    url: Annotated[str, typer.Argument(help="ssh://[user@]host[:port]")],
    python: Annotated[
        str,
        typer.Option("--python", help="The host's Python that has kernelkit.", metavar="PATH"),
    ] = "python3",
    ssh_config: Annotated[
        Path | None,
        typer.Option("--ssh-config", help="An ssh_config file to use (ssh -F).", metavar="F"),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a host of the same name.")
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh/--no-refresh",
            help="List the host's kernels now, over ssh (else: `kernelkit hosts refresh`).",
        ),
    ] = True,
) -> None:
    """Register a host, and list its kernels (kept for `kernelkit list`)."""
    from kernelkit.nanny._hosts import HostConfigError, HostRegistry, parse_ssh_url

    try:
        config = str(ssh_config.resolve()) if ssh_config is not None else None
        host = parse_ssh_url(name, url, python=python, ssh_config=config)
        HostRegistry().add(host, replace=replace)
    except HostConfigError as exc:
        _error(str(exc), EXIT_USAGE)
    typer.echo(f"added host {host.name} at {host.url} (python: {host.python})")
    if refresh:
        _refresh([host.name])


def _refresh(names: list[str] | None) -> bool:
    """List the hosts' kernels over ssh and say what each offers; False if one failed."""
    from kernelkit.nanny._hosts import HostConfigError
    from kernelkit.nanny._ssh_listing import ORIGIN_HOST
    from kernelkit.nanny._ssh_provider import SSHProvider

    try:
        types = SSHProvider().refresh(names)
    except HostConfigError as exc:
        _error(str(exc), EXIT_NOT_FOUND if "no host named" in str(exc) else EXIT_FAILED)
    ok = True
    counts: dict[str, int] = {}
    for t in types:
        if t.origin == ORIGIN_HOST:
            ok = False
            typer.echo(f"{t.name}: could not list its kernels: {t.problems[0]}", err=True)
        else:
            host = t.name.split("/", 1)[0]
            counts[host] = counts.get(host, 0) + 1
    for host, n in sorted(counts.items()):
        typer.echo(f"{host}: {n} kernel{'s' if n != 1 else ''} listed")
    return ok


@hosts_app.command("refresh")
def refresh_hosts(
    names: Annotated[
        list[str] | None, typer.Argument(help="Hosts to ask (default: every one).")
    ] = None,
) -> None:
    """Ask the hosts for their kernels (kernelspecs and environments) over ssh, and keep
    the answers: `kernelkit list` shows them without contacting any host."""
    if not _refresh(names or None):
        raise typer.Exit(EXIT_FAILED)


@hosts_app.command("list")
def list_hosts(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"hosts": {name: {"url", "python", "ssh_config"}}}.'),
    ] = False,
) -> None:
    """List the registered hosts."""
    from kernelkit.nanny._hosts import HostConfigError, HostRegistry

    registry = HostRegistry()
    try:
        hosts = registry.load()
    except HostConfigError as exc:
        _error(str(exc), EXIT_FAILED)
    if as_json:
        import json

        doc = {"hosts": {name: h.to_dict() for name, h in sorted(hosts.items())}}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    if not hosts:
        typer.echo(f"No hosts registered ({registry.path}); add one with `kernelkit hosts add`.")
        return
    width = max(len(n) for n in hosts)
    for name, h in sorted(hosts.items()):
        extra = f"  ssh_config: {h.ssh_config}" if h.ssh_config else ""
        typer.echo(f"{name:<{width}}  {h.url}  python: {h.python}{extra}")


@hosts_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The host's name.")]) -> None:
    """Forget a host."""
    from kernelkit.nanny._hosts import HostConfigError, HostRegistry
    from kernelkit.nanny._ssh_listing import ListingCache

    try:
        HostRegistry().remove(name)
        ListingCache().remove(name)
    except HostConfigError as exc:
        unknown = "no host named" in str(exc)
        _error(str(exc), EXIT_NOT_FOUND if unknown else EXIT_FAILED)
    typer.echo(f"removed host {name}")
