"""Launching a kernel type: activate its environment, pick a provisioner, start it.

Kept apart from listing: this module imports provisioning (pyzmq, asyncio), which
listing never needs.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Mapping

from kernelkit._errors import DiscoveryError
from kernelkit.discovery._types import KernelType, LaunchOptions, shared_activator
from kernelkit.envs import Activator, Environment
from kernelkit.provisioning import KernelProvisionerBase, KernelProvisionerFactory

__all__ = [
    "default_activator",
    "launch_environment",
    "launch_kernel_type",
]

_factory: KernelProvisionerFactory | None = None


_lock = threading.Lock()


def default_activator() -> Activator:
    """The activator shared by launches and plans in this process (one activation cache)."""
    return shared_activator()


def _default_factory() -> KernelProvisionerFactory:
    global _factory
    with _lock:
        if _factory is None:
            _factory = KernelProvisionerFactory()
        return _factory


async def launch_environment(
    environment: Environment | None,
    extra: Mapping[str, str],
    *,
    activator: Activator | None = None,
) -> dict[str, str]:
    """The environment variables to launch with: ``environment`` activated (in a worker
    thread, since activation scripts may run), then ``extra`` on top.

    Raises:
        EnvironmentActivationError: an activation script failed or hung.
    """
    if environment is None:
        env = dict(os.environ)
    else:
        act = activator or default_activator()
        env = await asyncio.to_thread(act.activate, environment)
    env.update(extra)
    return env


async def launch_kernel_type(
    kernel_type: KernelType,
    options: LaunchOptions,
    *,
    activator: Activator | None = None,
    factory: KernelProvisionerFactory | None = None,
) -> KernelProvisionerBase:
    """Launch ``kernel_type`` and return its provisioner once the kernel listens.

    Raises:
        DiscoveryError: the kernel type has no kernelspec to launch (a broken environment).
        EnvironmentActivationError: its environment could not be activated.
        ProvisioningError: no such provisioner, or the kernel failed to start (with its
            exit code and last output lines).
    """
    spec = kernel_type.spec
    if spec is None:
        why = "; ".join(kernel_type.problems) or "it has no kernelspec"
        raise DiscoveryError(f"cannot launch {kernel_type.id}: {why}")
    env = await launch_environment(kernel_type.environment, options.env, activator=activator)
    provisioner = (factory or _default_factory()).create_provisioner_instance(
        options.kernel_id or str(uuid.uuid4()), spec, parent=options.parent
    )
    extra_arguments = tuple(options.extra_arguments)
    if kernel_type.environment is None:
        params = await provisioner.pre_launch(
            env=env, cwd=options.cwd, extra_arguments=extra_arguments
        )
    else:
        # Activated: complete as it is. Merged over os.environ, a variable activation
        # removed (the launcher's own PYTHONHOME, VIRTUAL_ENV_PROMPT...) would come back.
        params = await provisioner.pre_launch(
            env=env, inherit_env=False, cwd=options.cwd, extra_arguments=extra_arguments
        )
    try:
        await provisioner.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
    except BaseException:
        await provisioner.cleanup(restart=False)
        raise
    try:
        await provisioner.post_launch()
    except BaseException:
        await provisioner.stop()  # it runs: a failed launch leaves no kernel behind
        await provisioner.cleanup(restart=False)
        raise
    return provisioner
