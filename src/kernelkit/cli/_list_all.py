"""``kernelkit list --all``: also the interpreters that cannot run a kernel yet (no
ipykernel, no kernelspec), with what is missing and the command that fixes it."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.text import Text

from kernelkit.discovery import FindResult
from kernelkit.envs import Environment, EnvLocations, find_environments

__all__ = [
    "environment_to_json",
    "render_without_kernel",
    "without_kernel",
]


def without_kernel(result: FindResult, locations: EnvLocations | None = None) -> list[Environment]:
    """Healthy environments with a Python but no kernel in ``result`` (no ipykernel and
    no kernelspec of their own)."""
    with_kernels = {k.environment.id for k in result.kernels if k.environment is not None}
    scan = find_environments(locations)
    return [
        env
        for env in scan.environments
        if env.healthy
        and env.interpreter is not None
        and not env.has_ipykernel
        and env.id not in with_kernels
    ]


def environment_to_json(env: Environment) -> dict[str, Any]:
    """One entry of ``without_kernel`` in ``kernelkit list --all --json``."""
    return {
        "id": env.id,
        "name": env.name,
        "kind": env.kind,
        "prefix": str(env.prefix),
        "interpreter": str(env.interpreter) if env.interpreter else None,
        "python_version": env.python_version,
        "missing": "ipykernel",
        "fix": f"kernelkit env add-kernel {env.id}",
    }


def render_without_kernel(envs: list[Environment], console: Console | None = None) -> None:
    """The section of ``kernelkit list --all`` after the kernels."""
    console = console or Console()
    text = Text()
    text.append("\nInterpreters without a kernel yet", style="bold")
    if not envs:
        text.append("\n    none")
        console.print(text, soft_wrap=True, highlight=False)
        return
    home = os.path.expanduser("~")
    width = max(len(env.id) for env in envs)
    for env in envs:
        version = f"Python {env.python_version}" if env.python_version else "Python"
        prefix = str(env.prefix)
        if home not in ("", "/") and prefix.startswith(home + os.sep):
            prefix = "~" + prefix[len(home) :]
        text.append(f"\n    {env.id.ljust(width)}  ")
        text.append("no ipykernel", style="yellow")
        text.append(f"  {env.kind}, {version}  {prefix}", style="dim")
    text.append(
        "\nAdd one with: kernelkit env add-kernel ENV (then it is listed as env/ENV/python3)",
        style="dim",
    )
    console.print(text, soft_wrap=True, highlight=False)
