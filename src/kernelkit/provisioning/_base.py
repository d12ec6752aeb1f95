"""The provisioner interface: :class:`KernelProvisionerBase`.

A provisioner starts one kernel somewhere and controls its lifetime. The methods and
their meaning follow jupyter_client's documented provisioning API; what differs:

- the connection info is a :class:`~kernelkit.ConnectionInfo`, not a dict;
- :meth:`pre_launch` and :meth:`launch_kernel` take typed keywords, not ``**kwargs``,
  and :meth:`pre_launch` returns a :class:`LaunchParams`;
- a provisioner never sets attributes on its manager: the manager reads what it needs
  (``connection_info``, ``connection_file``, ``interrupt_mode``, :meth:`output_tail`)
  from the provisioner.

It is a plain class (no ABCMeta), so a provisioner may also inherit traitlets'
``LoggingConfigurable``: ``__init__`` passes keywords it does not know (``parent``,
traits) on to the next class.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kernelkit._connection import ConnectionInfo, connection_file_path
from kernelkit._errors import KernelDied, ProvisioningError
from kernelkit.provisioning._exitwatch import EXIT_STATUS_UNKNOWN
from kernelkit.specs import KernelSpec

__all__ = [
    "KernelProvisionerBase",
    "LaunchParams",
    "base_environ",
]


def base_environ(env: Mapping[str, str] | None, *, inherit_env: bool) -> dict[str, str]:
    """The environment a kernelspec's ``env`` is applied to: ``env`` over a copy of
    ``os.environ`` with ``inherit_env``, else ``env`` alone (complete as given)."""
    if not inherit_env:
        return dict(env or {})
    return {**os.environ, **(env or {})}


@dataclass(frozen=True, slots=True)
class LaunchParams:
    """What :meth:`KernelProvisionerBase.pre_launch` prepared for :meth:`launch_kernel`."""

    cmd: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


class KernelProvisionerBase:
    """Starts one kernel and controls its lifetime. Subclass it for a new place to run
    kernels; register the subclass under the ``kernelkit.provisioners`` entry point group.

    Must implement: :attr:`has_process`, :meth:`poll`, :meth:`wait`, :meth:`send_signal`,
    :meth:`kill`, :meth:`terminate`, :meth:`launch_kernel`. The rest have defaults.

    The launch sequence (run once, by :func:`~kernelkit.provisioning.launch_provisioner`,
    for every manager)::

        params = await p.pre_launch(env=..., cwd=...)
        info = await p.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
        await p.post_launch()
        ...
        await p.shutdown_requested(restart=False)   # after shutdown_request was sent
        await p.stop()                              # or terminate/wait/kill
        await p.cleanup(restart=False)
    """

    def __init__(self, *, kernel_id: str, kernel_spec: KernelSpec, **kwargs: Any) -> None:
        self.kernel_id = kernel_id
        self.kernel_spec = kernel_spec
        #: Where the running kernel listens; set by :meth:`launch_kernel`.
        self.connection_info: ConnectionInfo | None = None
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ required

    @property
    def has_process(self) -> bool:
        """True while this provisioner controls a kernel process (until cleanup)."""
        raise NotImplementedError(f"{type(self).__name__} must implement has_process")

    async def poll(self) -> int | None:
        """None while the kernel runs, else its exit status (negative: killed by signal)."""
        raise NotImplementedError(f"{type(self).__name__} must implement poll()")

    async def wait(self) -> int | None:
        """Wait until the kernel has exited; returns its exit status."""
        raise NotImplementedError(f"{type(self).__name__} must implement wait()")

    async def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel (its whole process group, for local kernels)."""
        raise NotImplementedError(f"{type(self).__name__} must implement send_signal()")

    async def kill(self, restart: bool = False) -> None:
        """Kill the kernel at once (SIGKILL)."""
        raise NotImplementedError(f"{type(self).__name__} must implement kill()")

    async def terminate(self, restart: bool = False) -> None:
        """Ask the kernel to exit (SIGTERM)."""
        raise NotImplementedError(f"{type(self).__name__} must implement terminate()")

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        """Start the kernel and return where it listens (its ports chosen).

        Raises:
            KernelStartError: the kernel could not be started or died while starting.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement launch_kernel()")

    # ------------------------------------------------------------------ defaults

    @property
    def connection_file(self) -> Path | None:
        """The connection file of the running kernel, for clients that attach by file
        (``jupyter console --existing``); None when this provisioner writes none (the
        default) or no kernel runs."""
        return None

    @property
    def interrupt_mode(self) -> Literal["signal", "message"]:
        """How to interrupt this kernel: ``"signal"`` (SIGINT via :meth:`send_signal`) or
        ``"message"`` (an ``interrupt_request`` on the control channel, sent by the
        manager or client: a provisioner does not talk the messaging protocol)."""
        return self.kernel_spec.interrupt_mode

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        """Prepare a launch: the command line and environment from the kernelspec.

        ``env`` is added to this process's environment, or with ``inherit_env=False`` it
        *is* the environment (complete: an activated environment, where a variable that
        activation removed must stay removed); the spec's ``env`` is applied on top either
        way. The default names the connection file of this kernel id in Jupyter's
        runtime directory; subclasses prepare whatever else they need (and must honour
        ``inherit_env``: :func:`base_environ` does).
        """
        cmd = self.kernel_spec.format_argv(connection_file=connection_file_path(self.kernel_id))
        return LaunchParams(
            cmd=(*cmd, *extra_arguments),
            env=self.kernel_spec.format_env(base_environ(env, inherit_env=inherit_env)),
            cwd=os.fspath(cwd) if cwd is not None else None,
        )

    async def post_launch(self) -> None:
        """Called after :meth:`launch_kernel` succeeded. Default: nothing."""

    async def shutdown_requested(self, restart: bool = False) -> None:
        """Called as the manager sends ``shutdown_request`` (the kernel may exit by
        itself from then on): the moment to note what must be stopped once it has exited.
        Default: nothing."""

    async def cleanup(self, restart: bool = False) -> None:
        """Release what the launch held (files, sockets, fds) once the kernel is gone."""

    async def get_provisioner_info(self) -> dict[str, Any]:
        """State to persist so another process can re-attach (:meth:`load_provisioner_info`)."""
        info = self.connection_info.to_dict() if self.connection_info is not None else None
        return {"kernel_id": self.kernel_id, "connection_info": info}

    async def load_provisioner_info(self, provisioner_info: Mapping[str, Any]) -> None:
        """Restore state saved by :meth:`get_provisioner_info`.

        Raises:
            ProvisioningError: the info is not what :meth:`get_provisioner_info` returns.
        """
        kernel_id = provisioner_info.get("kernel_id")
        if not isinstance(kernel_id, str) or not kernel_id:
            raise ProvisioningError("provisioner info: 'kernel_id' must be a non-empty string")
        self.kernel_id = kernel_id
        info = provisioner_info.get("connection_info")
        if info is not None:
            if not isinstance(info, Mapping):
                raise ProvisioningError("provisioner info: 'connection_info' must be an object")
            # ConnectionFileError (a KernelError) names what is wrong.
            self.connection_info = ConnectionInfo.from_dict(info, source="provisioner info")

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        """How long to wait for a graceful exit before killing."""
        return recommended

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        """How long a kernel must run before its start counts as stable (for restarters)."""
        return recommended

    def output_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the kernel wrote to stdout/stderr, if captured."""
        return []

    def died_error(
        self, exit_code: int | None, message: str = "the kernel process exited"
    ) -> KernelDied:
        """A :class:`~kernelkit.KernelDied` for this kernel, with exit code and output tail."""
        return KernelDied(
            message,
            kernel_name=self.kernel_spec.name,
            exit_code=None if exit_code == EXIT_STATUS_UNKNOWN else exit_code,
            output_tail=self.output_tail(),
        )

    async def stop(self, *, grace: float | None = None, restart: bool = False) -> int | None:
        """Terminate, wait up to ``grace`` seconds (default :meth:`get_shutdown_wait_time`),
        then kill; returns the exit status. Waits on the exit itself, never in steps."""
        if grace is None:
            grace = self.get_shutdown_wait_time()
        if await self.poll() is None:
            await self.terminate(restart=restart)
            try:
                return await asyncio.wait_for(self.wait(), grace)
            except asyncio.TimeoutError:
                await self.kill(restart=restart)
        return await self.wait()
