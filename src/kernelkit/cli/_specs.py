"""``kernelkit specs list|install|remove``: Jupyter kernelspec directories."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.cli._status import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from kernelkit.specs import (
    install_kernel_spec,
    kernel_spec_dirs,
    remove_kernel_spec,
    scan_kernel_specs,
)

__all__ = ["install_command", "list_specs_command", "remove_command"]


def _error(message: str) -> None:
    Console(stderr=True).print(Text(message, style="red"), highlight=False, soft_wrap=True)


def list_specs_command(*, as_json: bool) -> int:
    """``kernelkit specs list``; returns the exit status."""
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
        return EXIT_OK
    console = Console()
    if not specs:
        console.print("No kernelspecs in: " + ", ".join(map(str, kernel_spec_dirs())))
        return EXIT_OK
    table = Table(title="Kernelspecs", title_justify="left")
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("directory", overflow="fold")
    table.add_column("health", overflow="fold")
    for spec in specs:
        health = (
            Text("ok", style="green")
            if spec.healthy
            else Text("\n".join(spec.problems), style="red")
        )
        table.add_row(spec.name, str(spec.resource_dir), health)
    console.print(table)
    return EXIT_OK


def install_command(
    source_dir: Path,
    *,
    name: str | None,
    user: bool,
    prefix: Path | None,
    sys_prefix: bool,
) -> int:
    """``kernelkit specs install``; returns the exit status."""
    if sys_prefix:
        if prefix is not None:
            _error("give --prefix or --sys-prefix, not both")
            return EXIT_USAGE
        prefix = Path(sys.prefix)
    try:
        path = install_kernel_spec(source_dir, kernel_name=name, user=user, prefix=prefix)
    except KernelSpecError as exc:
        _error(str(exc))
        return EXIT_FAILED
    sys.stdout.write(f"Installed kernelspec {path.name} in {path}\n")
    return EXIT_OK


def remove_command(names: Sequence[str]) -> int:
    """``kernelkit specs remove``; returns the exit status (the worst of all names)."""
    status = EXIT_OK
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
        sys.stdout.write(f"Removed {path}\n")
    return status
