"""The one launch sequence: pre_launch, launch_kernel, post_launch, and on any failure
(in any of the three, cancellation included) stop and cleanup, so nothing is left."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from kernelkit._connection import ConnectionInfo
from kernelkit.provisioning._base import KernelProvisionerBase

__all__ = ["launch_provisioner"]

log = logging.getLogger("kernelkit.provisioning")


async def launch_provisioner(
    provisioner: KernelProvisionerBase,
    *,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    extra_arguments: Sequence[str] = (),
    restart: bool = False,
) -> ConnectionInfo:
    """Launch a kernel with ``provisioner`` and return where it listens.

    ``env``, ``inherit_env``, ``cwd`` and ``extra_arguments`` go to
    :meth:`~KernelProvisionerBase.pre_launch` (with ``inherit_env=False``, ``env`` is the
    complete environment). When any step fails, the kernel is stopped if it runs and
    :meth:`~KernelProvisionerBase.cleanup` releases what the launch held (with
    ``restart``: keeping the key and ports for the next attempt); the original error is
    raised (a failure of the cleanup itself is logged).

    Raises:
        KernelStartError: the kernel could not be started or died while starting.
        ProvisioningError: the provisioner could not prepare the launch.
    """
    try:
        params = await provisioner.pre_launch(
            env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=tuple(extra_arguments)
        )
        info = await provisioner.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
        await provisioner.post_launch()
    except BaseException:
        await _undo(provisioner, restart=restart)
        raise
    return info


async def _undo(provisioner: KernelProvisionerBase, *, restart: bool) -> None:
    """Stop what a failed launch started and release what it held; never raises over
    the launch's own error."""
    try:
        try:
            if provisioner.has_process and await provisioner.poll() is None:
                await provisioner.stop(grace=0, restart=restart)
        finally:
            await provisioner.cleanup(restart=restart)
    except Exception:
        log.exception("kernel %s: cleaning up after a failed launch failed", provisioner.kernel_id)
