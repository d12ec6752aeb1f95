"""``kernelkit list``: every kernel on this machine, from every provider, and its health."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from kernelkit.cli._list_table import render_listing
from kernelkit.cli._status import EXIT_BROKEN, EXIT_OK
from kernelkit.discovery import DiscoveryProblem, FindResult, KernelFinder, KernelType
from kernelkit.envs import Environment, EnvLocations, remember_environments

__all__ = [
    "kernel_to_json",
    "list_command",
    "listing_to_json",
    "remember_project_environments",
]


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
    """The ``kernelkit list --json`` document (schema: ``_app.LIST_JSON_SCHEMA``)."""
    kernels = result.broken if broken_only else result.kernels
    return {
        "kernelspecs": {k.id: kernel_to_json(k) for k in kernels},
        "problems": [_problem_to_json(p) for p in result.problems],
    }


def list_command(*, as_json: bool, broken: bool, time_limit: float, show_all: bool = False) -> int:
    """``kernelkit list``: print the listing; returns the exit status."""
    result = KernelFinder(time_limit=time_limit).find()
    bare = None
    if show_all:
        from kernelkit.cli._list_all import without_kernel

        bare = without_kernel(result)
    envs = [k.environment for k in result.kernels if k.environment is not None] + (bare or [])
    if envs:
        remember_project_environments(envs)
    if as_json:
        doc = listing_to_json(result, broken_only=broken)
        if bare is not None:
            from kernelkit.cli._list_all import environment_to_json

            doc["without_kernel"] = [environment_to_json(env) for env in bare]
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render_listing(result, broken_only=broken)
        if bare is not None:
            from kernelkit.cli._list_all import render_without_kernel

            render_without_kernel(bare)
    if broken and (result.broken or result.problems):
        return EXIT_BROKEN
    return EXIT_OK


def remember_project_environments(
    envs: Iterable[Environment], locations: EnvLocations | None = None
) -> None:
    """Remember the project environments just listed (found from the current directory
    or its parents), so the ids printed here work from any directory later."""
    loc = locations or EnvLocations.from_environ()
    projects = {str(d) for d in loc.project_dirs}
    prefixes = [env.prefix for env in envs if env.found_via in projects]
    if not prefixes or not loc.remembered_files:
        return
    try:
        remember_environments(prefixes, loc.remembered_files[0])
    except OSError:
        # Best effort: the listing itself is right; only later lookups from other
        # directories miss these environments.
        return
