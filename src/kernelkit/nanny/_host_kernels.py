"""What a host offers, as kernelkit reads it there: ``python -m kernelkit.nanny._host_kernels``
prints one JSON object, ``{"kernels": [...], "problems": [...]}``, with the host's
kernelspecs and environments (the ``spec`` and ``env`` providers; never its own SSH hosts
or servers). Run on the host over ssh by :mod:`kernelkit.nanny._ssh_listing`.

Each kernel: ``id`` (``spec/<name>``, ``env/<env-id>/<name>``), ``display_name``,
``language``, ``origin``, ``problems``, ``spec`` (kernel.json fields, or null),
``environment`` (``name``, ``kind``, ``prefix``, or null) and ``launch``: how the nanny
here starts it early (:func:`launch_recipe`), or null.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from kernelkit._errors import KernelError
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.envs._activation import diff_environ
from kernelkit.nanny._early import RECIPE_KERNEL_ID, early_launch, resolve
from kernelkit.nanny._wire import NannyConfig

__all__ = ["LISTED_PROVIDERS", "host_kernels", "launch_recipe", "main"]

#: The providers whose kernels a host offers.
LISTED_PROVIDERS = ("spec", "env")


def _entry(t: KernelType) -> dict[str, Any]:
    spec = None
    if t.spec is not None:
        spec = {**t.spec.to_dict(), "name": t.spec.name}
    env = None
    if t.environment is not None:
        e = t.environment
        env = {"name": e.name, "kind": str(e.kind), "prefix": str(e.prefix)}
    return {
        "id": t.id,
        "display_name": t.display_name,
        "language": t.language,
        "origin": t.origin,
        "problems": list(t.problems),
        "spec": spec,
        "environment": env,
    }


def launch_recipe(t: KernelType, finder: KernelFinder) -> dict[str, Any] | None:
    """How the nanny here would start kernel type ``t`` before its own imports
    (:func:`kernelkit.nanny._early.early_launch`, for kernel :data:`RECIPE_KERNEL_ID`),
    so that an owner elsewhere can prepare that start (:mod:`kernelkit.nanny._prepare`):
    ``cmd``, ``env_changes`` (``[op, name, value]``: what to change in the nanny's
    environment, as :func:`~kernelkit.envs._activation.diff_environ` finds it), ``cwd``,
    ``connection_file``, ``kernel_name`` and ``stamps`` (``[path, mtime_ns, size]`` of the
    kernelspec file: a changed one makes the recipe stale). None for a kernel the nanny
    starts otherwise, or cannot start."""
    provider, _, rest = t.id.partition("/")
    if t.spec is None or not rest:
        return None
    config = NannyConfig(
        kernel_id=RECIPE_KERNEL_ID,
        spec=None,
        spec_name=rest if provider == "spec" else t.id,
        env={},
        inherit_env=True,
    )
    try:
        launch = resolve(config, finder=finder)
    except KernelError:
        return None  # (its problems are listed with it)
    prepared = early_launch(config, launch)
    if prepared is None:
        return None
    stamps = []
    kernel_json = launch.spec.resource_dir / "kernel.json"
    try:
        st = kernel_json.stat()
    except OSError:
        pass  # a kernel made up by its provider: no file to watch
    else:
        stamps.append([str(kernel_json), st.st_mtime_ns, st.st_size])
    return {
        "cmd": prepared.cmd,
        "env_changes": [[c.op, c.name, c.value] for c in diff_environ(os.environ, prepared.env)],
        "cwd": prepared.cwd,
        "connection_file": str(prepared.connection_file),
        "kernel_name": launch.spec.name,
        "stamps": stamps,
    }


def host_kernels() -> dict[str, Any]:
    """This machine's kernelspecs and environments, as the listing sends them."""
    finder = KernelFinder()
    providers = [p for p in LISTED_PROVIDERS if p in finder.provider_names]
    found = finder.find(providers=providers)
    return {
        "kernels": [{**_entry(t), "launch": launch_recipe(t, finder)} for t in found],
        "problems": [f"{p.provider}: {p.reason}" for p in found.problems],
    }


def main() -> int:
    sys.stdout.write(json.dumps(host_kernels()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
