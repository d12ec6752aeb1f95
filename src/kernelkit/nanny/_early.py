"""The nanny's start, before its heavy imports: the configuration read and its kernel
found, and the kernel started if its owner did not start it already
(:mod:`kernelkit.nanny._first`). The rest of the nanny (asyncio, ZeroMQ, the provisioner)
is imported while the kernel boots, instead of before it.

Only the common case starts this early: a kernel that writes its own ports back into its
connection file (ipykernel and its kin) over tcp, unencrypted. Its file and process are
the ones the nanny's :class:`~kernelkit.provisioning.LocalProvisioner` would have made
(same key, same path, same tag, same parent-death signal), and the provisioner adopts
them (:class:`~kernelkit.nanny._kernel.KernelUnderNanny`). Any other kernel is started by
the provisioner, as before. The owner on this machine prepares the launch itself
(:func:`early_launch`, from :mod:`kernelkit.nanny._prepare`), so the nanny starts the
kernel before even this module is imported; a nanny on another host (its kernelspec
named, found there) prepares it here.

This module imports what that needs (no asyncio, no zmq, no entry points, and the
standard json: orjson loads uuid, datetime and platform); discovery only for a host's
environment (``env/<env-id>/<name>``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelkit import specs
from kernelkit._errors import KernelError
from kernelkit.nanny._first import EarlyKernel, First
from kernelkit.nanny._prepared import (
    EarlyLaunch,
    connection_text,
    prepare_launch,
    writes_ports_back,
)
from kernelkit.nanny._wire import NannyConfig
from kernelkit.specs._spec import KernelSpec

__all__ = [
    "RECIPE_KERNEL_ID",
    "Beginning",
    "Resolved",
    "begin",
    "connection_text",
    "early_launch",
    "eligible",
    "resolve",
    "start_early",
]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

#: The kernel id a host's launch recipe is written for
#: (:func:`kernelkit.nanny._host_kernels.launch_recipe`): the owner puts its own there.
RECIPE_KERNEL_ID = "kernelkit-recipe"


@dataclass(frozen=True, slots=True)
class Beginning:
    """What the nanny's first moments produced: its configuration and the kernel it names
    (or the error that answers a bad one), whether it is a subreaper, and the kernel's
    process if it started early (``prepared``: as its owner prepared it;
    ``stale_recipe``: the owner prepared it from an out-of-date listing of this host, and
    the nanny started it itself)."""

    config: NannyConfig | None
    error: dict[str, Any] | None = None
    subreaper: bool = False
    launch: Resolved | None = None
    early: EarlyKernel | None = None
    #: ``early`` is the kernel its owner prepared.
    prepared: bool = False
    #: The owner's launch recipe for this host was out of date (not used).
    stale_recipe: bool = False


def begin(first: First) -> Beginning:
    """Read the configuration, find its kernel, start it now if nobody did yet.

    A kernel started from a host's launch recipe (``first.early.recipe``: prepared by the
    owner from its cached listing of this host) is kept only if it is exactly what this
    machine's own kernelspec gives now (command, environment, connection file); if not,
    the listing was stale: it is discarded and the right one started."""
    early = first.early
    if first.request is None:
        return Beginning(None, {"status": "error", "error": "ProvisioningError",
                                "message": first.error})  # fmt: skip
    try:
        config = NannyConfig.from_dict(first.request)
        launch = resolve(config)
    except KernelError as exc:
        if early is not None:
            early.discard()
        return Beginning(
            None, {"status": "error", "error": type(exc).__name__, "message": str(exc)}
        )
    stale = first.stale_recipe
    if early is not None and early.recipe and not _as_prepared(early, early_launch(config, launch)):
        early.discard()
        early, stale = None, True
    prepared = early is not None
    if early is None and first.subreaper:
        early = start_early(config, launch)
    return Beginning(
        config,
        subreaper=first.subreaper,
        launch=launch,
        early=early,
        prepared=prepared,
        stale_recipe=stale,
    )


def _as_prepared(early: EarlyKernel, prepared: EarlyLaunch | None) -> bool:
    """Whether ``early`` was started as ``prepared`` says (its key aside: any will do)."""
    return (
        prepared is not None
        and early.cmd == prepared.cmd
        and early.env == prepared.env
        and early.cwd == prepared.cwd
        and early.connection_file == str(prepared.connection_file)
    )


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the nanny launches: the kernelspec and the environment to apply it to
    (``inherit_env``: on top of the nanny's own)."""

    spec: KernelSpec
    env: dict[str, str]
    inherit_env: bool


def resolve(config: NannyConfig, *, finder: Any = None) -> Resolved:
    """The configuration's kernel: its spec as given, a kernelspec of this machine by
    name, or a kernel type of this machine by id (``env/<env-id>/python3``: prepared by
    discovery, with ``finder`` if given, its environment activated; only then is
    discovery loaded).

    Raises:
        KernelError: no such kernel here, or it cannot be launched (the message says why).
    """
    if config.spec is not None:
        return Resolved(config.spec, dict(config.env), config.inherit_env)
    name = config.spec_name or ""
    if "/" not in name:
        return Resolved(specs.get_kernel_spec(name), dict(config.env), config.inherit_env)
    base = {**os.environ, **config.env} if config.inherit_env else dict(config.env)
    host_plan = importlib.import_module("kernelkit.nanny._host_plan")
    spec, env = host_plan.prepare_here(name, base, finder=finder)
    return Resolved(spec, env, False)


def eligible(config: NannyConfig, spec: KernelSpec) -> bool:
    """Whether the kernel can start early (the module docstring's common case)."""
    opts = config.options
    if opts.get("independent") or opts.get("transport", "tcp") != "tcp":
        return False
    if opts.get("encryption", "auto") != "none" and opts.get("ip", "127.0.0.1") not in _LOOPBACK:
        return False  # CurveZMQ may be wanted: keys need zmq, left to the provisioner
    return writes_ports_back(spec, port_mode=opts.get("port_mode"))


def early_launch(config: NannyConfig, launch: Resolved) -> EarlyLaunch | None:
    """Prepare the early start of the configuration's kernel (module docstring); None if
    it is not the common case (the provisioner then does it all)."""
    if not eligible(config, launch.spec):
        return None
    opts = config.options
    runtime = opts.get("runtime_dir")
    base = {**os.environ, **launch.env} if launch.inherit_env else dict(launch.env)
    return prepare_launch(
        launch.spec,
        kernel_id=config.kernel_id,
        base_env=base,
        cwd=config.cwd,
        extra_arguments=config.extra_arguments,
        ip=opts.get("ip", "127.0.0.1"),
        runtime_dir=Path(runtime) if runtime else None,
    )


def start_early(config: NannyConfig, launch: Resolved) -> EarlyKernel | None:
    """Prepare and start the kernel now, if it is the common case (module docstring);
    None otherwise, or when anything goes wrong (the provisioner then starts it, and
    reports the error)."""
    prepared = early_launch(config, launch)
    if prepared is None:
        return None
    return prepared.start(config.kernel_id)
