"""Kernels we did not start, controlled through their nanny: :class:`AsyncAttachedKernel`."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Mapping
from typing import Any

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ProvisioningError
from kernelkit.client import AsyncKernelClient
from kernelkit.nanny._ssh_tunnel import SSHRoute, SSHTunnel, ssh_route_of
from kernelkit.nanny._wire import EVENT_RESTARTED
from kernelkit.protocol import died_error, exit_status_of, is_final_death
from kernelkit.transport import NannyControl, follow_restart

__all__ = ["AsyncAttachedKernel"]

_RESTART_TIMEOUT = 90.0


class AsyncAttachedKernel:
    """A running kernel under a nanny, reached from its connection file by any process
    of the same user: interrupt, restart and stop it, and learn of its death the moment
    it happens (clients from :meth:`client` fail their requests with
    :class:`~kernelkit.KernelDied`, carrying the exit status and the last output).

    The method names are the kernel manager's. With ``owner=True`` this process also
    becomes the kernel's owner: when it exits, the nanny stops the kernel (unless
    ``detached``); that is how a detached kernel is re-attached.

    Use ``async with AsyncAttachedKernel.from_connection_file(path) as k:``.
    """

    def __init__(
        self,
        info: ConnectionInfo,
        *,
        owner: bool = False,
        detached: bool = False,
        route: SSHRoute | None = None,
    ) -> None:
        self.check_has_nanny(info)
        if route is not None and owner and not detached:
            raise ProvisioningError(
                f"kernel {info.kernel_name or '(unnamed)'} runs on host {route.host.name!r}: "
                "this process cannot own it from here (its death could not be watched "
                "there); attach with owner=False to control it, or detached=True"
            )
        self.connection_info = info
        self._owner = owner
        self._detached = detached
        #: This process's own ssh tunnel to the kernel's host (a ``route`` given).
        self.tunnel = SSHTunnel(route) if route is not None else None
        self._control_or_none = None if route is not None else self._connect(info)
        self._clients: weakref.WeakSet[AsyncKernelClient] = weakref.WeakSet()
        self._died: asyncio.Future[int | None] | None = None
        self.output_at_death: list[str] = []
        #: The kernel's pid on its machine and state, as of the last status.
        self.pid: int | None = None
        self.state = "unknown"

    def _connect(self, info: ConnectionInfo) -> NannyControl:
        return NannyControl(
            info.nanny,
            key=info.key,
            signature_scheme=info.signature_scheme,
            server_key=info.nanny_publickey,
            on_event=self._on_event,
        )

    @property
    def _control(self) -> NannyControl:
        control = self._control_or_none
        if control is None:
            raise ProvisioningError(
                f"kernel {self.connection_info.kernel_name or '(unnamed)'} is on another "
                "host: call start() (or use `async with`) first, to reach it"
            )
        return control

    @staticmethod
    def check_has_nanny(info: ConnectionInfo) -> None:
        """Raises ProvisioningError (saying what to do) when ``info`` names no nanny."""
        if not info.nanny:
            raise ProvisioningError(
                f"kernel {info.kernel_name or '(unnamed)'}: its connection information names "
                "no nanny (no 'kernelkit_nanny'); it was not started under one, so only its "
                "own messages (interrupt_request, shutdown_request) can control it"
            )

    @classmethod
    def from_connection_file(
        cls,
        path: str | os.PathLike[str],
        *,
        owner: bool = False,
        detached: bool = False,
        check_mode: bool = True,
    ) -> AsyncAttachedKernel:
        """From a kernel's connection file (which names its nanny). For a kernel that
        :class:`~kernelkit.nanny.SSHProvisioner` runs on another host through a tunnel,
        :meth:`start` opens this process's own tunnel to it (the file says where it is).

        Raises:
            ConnectionFileError: the file is missing or wrong.
            ProvisioningError: the file names no nanny.
        """
        info = read_connection_file(path, check_mode=check_mode)
        cls.check_has_nanny(info)
        return cls(info, owner=owner, detached=detached, route=ssh_route_of(path))

    async def __aenter__(self) -> AsyncAttachedKernel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self, *, timeout: float = 10.0) -> None:
        """Reach the nanny and subscribe to the kernel's death.

        Raises:
            KernelTimeout: the nanny did not answer (gone, or out of reach).
        """
        self._died = asyncio.get_running_loop().create_future()
        if self.tunnel is not None and self._control_or_none is None:
            self.connection_info = await self.tunnel.open(self.connection_info)
            self._control_or_none = self._connect(self.connection_info)
        if self._owner:
            # Our pid means nothing on another host: there, owning means keeping detached.
            owner_pid = os.getpid() if self.tunnel is None else None
            await self._control.request(
                "attach", timeout=timeout, owner_pid=owner_pid, detached=self._detached
            )
        self._status(await self._control.subscribe(timeout=timeout))

    def _status(self, status: Mapping[str, Any]) -> None:
        pid = status.get("pid")
        self.pid = pid if isinstance(pid, int) else None
        self.state = str(status.get("state", "unknown"))
        if self.state == "dead" and self._died is not None and not self._died.done():
            self._died.set_result(exit_status_of(status))

    def _on_event(self, kind: str, content: Mapping[str, Any]) -> None:
        if is_final_death(kind, content):
            error = died_error(content, kernel_name=self.connection_info.kernel_name)
            self.output_at_death = list(error.output_tail)
            self.state = "dead"
            if self._died is not None and not self._died.done():
                self._died.set_result(error.exit_code)
            for kc in list(self._clients):
                kc.notify_dead(error)
        elif kind == EVENT_RESTARTED:
            self.state = "running"
            self._died = asyncio.get_running_loop().create_future()
            self.connection_info = follow_restart(self.connection_info, content)
            for kc in list(self._clients):
                kc.notify_restarted(self.connection_info)

    # ------------------------------------------------------------------ the manager's names

    def client(self, **options: Any) -> AsyncKernelClient:
        """A client for the kernel (not yet started), told of its death and restarts."""
        kc = AsyncKernelClient.from_connection_info(self.connection_info, **options)
        self._clients.add(kc)
        return kc

    async def is_alive(self) -> bool:
        """Whether the kernel process runs (asks the nanny)."""
        self._status(await self._control.request("status"))
        return self.state == "running"

    async def interrupt_kernel(self) -> None:
        """SIGINT to the kernel's process group."""
        await self._control.request("interrupt")

    async def signal_kernel(self, signum: int) -> None:
        """Any signal to the kernel's process group."""
        await self._control.request("signal", signum=int(signum))

    async def restart_kernel(self, *, grace: float = 1.0) -> None:
        """Stop the kernel (``grace`` seconds after SIGTERM, then SIGKILL) and start it
        again with the same key, on the same ports where they are free.

        Raises:
            ProvisioningError: the nanny could not restart it (the reason is given).
        """
        self._status(await self._control.request("restart", timeout=_RESTART_TIMEOUT, grace=grace))

    async def shutdown_kernel(self, *, now: bool = False, grace: float = 1.0) -> None:
        """Stop the kernel and everything it started; the nanny exits."""
        await self._control.request("stop", timeout=grace + 10.0, grace=0.0 if now else grace)
        self.state = "stopped"

    async def detach(self) -> None:
        """Let the kernel outlive its owner (until someone stops it)."""
        await self._control.request("detach")

    async def output_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the kernel wrote (kept by the nanny)."""
        reply = await self._control.request("output", lines=n)
        return [str(x) for x in reply.get("lines", ())]

    async def wait(self) -> int | None:
        """Wait until the kernel dies; its exit status (None if unknown)."""
        if self._died is None:
            raise ProvisioningError("call start() (or use `async with`) first")
        return await asyncio.shield(self._died)

    async def aclose(self) -> None:
        """Close the connection to the nanny (the kernel is left as it is)."""
        control, self._control_or_none = self._control_or_none, None
        if control is not None:
            await control.aclose()
        if self.tunnel is not None:
            await self.tunnel.aclose()
