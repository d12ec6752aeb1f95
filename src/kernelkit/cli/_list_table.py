"""The table of ``kernelkit list`` (rich), grouped by provider."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kernelkit.discovery import FindResult, KernelType

__all__ = ["render_listing"]

_PROVIDER_TITLES = {
    "spec": "Jupyter kernelspec directories",
    "env": "Python and conda environments",
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


def render_listing(
    result: FindResult, *, broken_only: bool, console: Console | None = None
) -> None:
    """Print ``result`` as tables, one per provider, then a summary line."""
    console = console or Console()
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
