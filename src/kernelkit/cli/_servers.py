"""``kernelkit servers add|list|remove``: the Jupyter Servers and gateways kernelkit lists
kernels from (``remote/<server>/...``).

Declared and implemented here (one module, registered in ``_app`` with ``add_typer``);
the registry and rich are imported only when a command runs. Tokens are never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from kernelkit.cli._status import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE

if TYPE_CHECKING:
    from kernelkit.client import AsyncKernelClient

__all__ = [
    "SERVER_HELP",
    "attached_client",
    "remote_address",
    "servers_app",
    "use_server",
]

servers_app = typer.Typer(
    name="servers",
    help=(
        "Jupyter Servers, Kernel Gateways and Enterprise Gateways whose kernels `kernelkit "
        "list` shows (ids remote/<server>/<kernelspec>, remote/<server>/kernels/<id>).\n\n"
        "Stored in the Jupyter config directory (kernelkit/servers.json; "
        "$KERNELKIT_SERVERS_DIR overrides it); a token from --token-file is copied into a "
        "file only you can read, a token from --token-env is read from that variable at "
        "each use. Tokens are never printed.\n\n"
        f"Exit status: 0 on success, {EXIT_FAILED} when the registry cannot be read or "
        f"written, {EXIT_NOT_FOUND} when `remove` is given an unknown name, {EXIT_USAGE} on "
        "bad input."
    ),
    short_help="Remote servers to list kernels from: add, list, remove.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def attached_client(kernel: str) -> AsyncKernelClient | None:
    """A client for ``remote/<server>/kernels/<id>`` (a kernel running on a registered
    server, attached to, never shut down by us); None for any other kernel name.

    Raises:
        ServerConfigError: no such server is registered, or its token cannot be read.
    """
    if "/kernels/" not in kernel:
        return None  # the remote package (httpx, websockets) only when needed
    from kernelkit.remote import attach_client
    from kernelkit.remote._attach import parse_attach_id

    return attach_client(kernel) if parse_attach_id(kernel) is not None else None


SERVER_HELP = (
    "Use the Jupyter Server or gateway at this URL for this call, unregistered (token "
    "from $JUPYTER_TOKEN); a bare kernel name means one of its kernelspecs."
)


def use_server(url: str | None, kernel: str) -> str:
    """``--server URL``: make ``url`` this process's unregistered server (``adhoc``);
    returns the kernel id to use (a bare name becomes ``remote/adhoc/<name>``).

    Raises:
        typer.BadParameter: the URL is unusable.
    """
    if url is None:
        return kernel
    import os

    from kernelkit.remote._errors import ServerConfigError
    from kernelkit.remote._servers import ADHOC_NAME, ADHOC_URL_ENV, adhoc_server

    os.environ[ADHOC_URL_ENV] = url
    try:
        adhoc_server()
    except ServerConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server") from None
    if not kernel or "/" in kernel:
        return kernel
    return f"remote/{ADHOC_NAME}/{kernel}"


def remote_address(provisioner: object) -> str | None:
    """``remote/<server>/kernels/<id>`` of a kernel a RemoteProvisioner runs (what
    ``kernelkit run --kernel`` attaches to); None for any other provisioner."""
    server = getattr(provisioner, "server", None)
    kernel_id = getattr(provisioner, "remote_kernel_id", None)
    name = getattr(server, "name", None)
    if not isinstance(name, str) or not isinstance(kernel_id, str):
        return None
    return f"remote/{name}/kernels/{kernel_id}"


def _error(message: str, status: int) -> NoReturn:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text(message, style="red"), highlight=False, soft_wrap=True)
    raise typer.Exit(status)


@servers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name, used in ids: remote/NAME/...")],
    url: Annotated[str, typer.Argument(help="The server's URL, e.g. http://127.0.0.1:8888/")],
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="A file holding the token (copied, mode 0600).", metavar="F"
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env", help="An environment variable holding the token.", metavar="VAR"
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a server of the same name.")
    ] = False,
) -> None:
    """Register a server (nothing is contacted: `kernelkit list` shows its health)."""
    from kernelkit.remote._errors import ServerConfigError
    from kernelkit.remote._servers import ServerRegistry, read_token_file

    if token_file is not None and token_env is not None:
        _error("give --token-file or --token-env, not both", EXIT_USAGE)
    try:
        token = read_token_file(token_file) if token_file is not None else None
        registry = ServerRegistry()
        server = registry.add(name, url, token=token, token_env=token_env, replace=replace)
    except ServerConfigError as exc:
        _error(str(exc), EXIT_USAGE)
    typer.echo(f"added server {server.name} at {server.url} (token: {server.token_source})")


@servers_app.command("list")
def list_servers(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"servers": {name: {"url", "token"}}}; "token" says where it comes '
            'from ("file", "env:VAR" or "none"), never what it is.',
        ),
    ] = False,
) -> None:
    """List the registered servers and where their tokens come from."""
    from kernelkit.remote._errors import ServerConfigError
    from kernelkit.remote._servers import ServerRegistry

    registry = ServerRegistry()
    try:
        servers = registry.servers()
    except ServerConfigError as exc:
        _error(str(exc), EXIT_FAILED)
    if as_json:
        import json

        doc = {"servers": {s.name: {"url": s.url, "token": s.token_source} for s in servers}}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    if not servers:
        typer.echo(
            f"No servers registered ({registry.path}); add one with `kernelkit servers add`."
        )
        return
    width = max(len(s.name) for s in servers)
    for s in servers:
        typer.echo(f"{s.name:<{width}}  {s.url}  token: {s.token_source}")


@servers_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The server's name.")]) -> None:
    """Forget a server and delete its stored token."""
    from kernelkit.remote._errors import ServerConfigError
    from kernelkit.remote._servers import ServerRegistry

    registry = ServerRegistry()
    try:
        registry.remove(name)
    except ServerConfigError as exc:
        unknown = "no server named" in str(exc)
        _error(str(exc), EXIT_NOT_FOUND if unknown else EXIT_FAILED)
    typer.echo(f"removed server {name}")
