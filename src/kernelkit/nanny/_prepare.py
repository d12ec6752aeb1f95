"""The owner's half of the nanny's early start: the nanny gets its kernel's launch
prepared (command, environment, key, the connection file's path and text), so it starts
the kernel the moment it has read its request, before its own imports
(:mod:`kernelkit.nanny._first`). Nothing is written here: a nanny that never reads its
request (its owner killed first) leaves no file.

A nanny on this machine gets the launch whole (:func:`prepare_early`). A nanny on
another host gets it from the host's *launch recipe*, kept with the host's cached
listing (:func:`prepare_from_recipe`): the command and the changes to the nanny's own
environment there, with the kernel id and key filled in here.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from kernelkit.nanny._early import (
    RECIPE_KERNEL_ID,
    connection_text,
    early_launch,
    eligible,
    resolve,
)
from kernelkit.nanny._wire import NannyConfig
from kernelkit.specs import KernelSpec

__all__ = ["prepare_early", "prepare_from_recipe"]


def prepare_early(config: NannyConfig) -> dict[str, Any] | None:
    """The request's ``"early"`` block for a kernelspec given whole (None for another
    kind of kernel, or a named one: the nanny finds and starts those itself)."""
    if config.spec is None:
        return None
    prepared = early_launch(config, resolve(config))
    return prepared.to_dict(config.kernel_id) if prepared is not None else None


def prepare_from_recipe(
    config: NannyConfig, recipe: Mapping[str, Any], spec: KernelSpec
) -> dict[str, Any] | None:
    """The request's ``"early"`` block for a nanny on another host, from that host's
    launch recipe for the kernel (:func:`kernelkit.nanny._host_kernels.launch_recipe`)
    and its kernelspec as listed (``spec``: whether this launch can start early with
    this configuration's options). None if it cannot (the nanny then does it all)."""
    kernel_id = config.kernel_id
    if "/" in kernel_id or kernel_id in ("", ".", "..") or not eligible(config, spec):
        return None
    cmd, changes = recipe.get("cmd"), recipe.get("env_changes")
    template, kernel_name = recipe.get("connection_file"), recipe.get("kernel_name")
    cwd, stamps = recipe.get("cwd"), recipe.get("stamps")
    if not (
        isinstance(cmd, list)
        and _strings(cmd)
        and isinstance(changes, list)
        and all(_strings(c) and len(c) == 3 for c in changes)
        and isinstance(template, str)
        and posixpath.basename(template) == f"kernel-{RECIPE_KERNEL_ID}.json"
        and isinstance(kernel_name, str)
        and cwd is None
        and isinstance(stamps, list)
    ):
        return None  # (a listing from another kernelkit version: the nanny does it all)
    path = posixpath.join(posixpath.dirname(template), f"kernel-{kernel_id}.json")
    key = os.urandom(32).hex().encode("ascii")
    ip = str(config.options.get("ip", "127.0.0.1"))
    return {
        "cmd": [a.replace(template, path) for a in cmd] + list(config.extra_arguments),
        "env_changes": changes,
        "stamps": stamps,
        "cwd": config.cwd,
        "key": key.decode("ascii"),
        "connection_file": path,
        "content": connection_text(ip=ip, key=key, kernel_name=kernel_name),
        "kernel_id": kernel_id,
    }


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(a, str) for a in value)
