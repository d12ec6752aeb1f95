"""The blocking face of :class:`~kernelkit.nanny.AsyncAttachedKernel`: :class:`AttachedKernel`.

It decides nothing: every method runs the async twin's on one event-loop thread of its
own (shared with the :class:`~kernelkit.KernelClient`\\ s from :meth:`client`).
"""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import Any

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ProvisioningError
from kernelkit._loopthread import LoopThread
from kernelkit.client import KernelClient
from kernelkit.nanny._attached import AsyncAttachedKernel
from kernelkit.nanny._ssh_tunnel import SSHRoute, ssh_route_of

__all__ = ["AttachedKernel"]


class AttachedKernel:
    """A running kernel under a nanny, from a process that did not start it (blocking).

    The same as :class:`~kernelkit.nanny.AsyncAttachedKernel`: ``with
    AttachedKernel.from_connection_file(path) as k:`` then ``k.interrupt_kernel()``,
    ``k.restart_kernel()``, ``k.shutdown_kernel()``, ``k.wait()``, ``k.client()``.
    """

    def __init__(
        self,
        info: ConnectionInfo,
        *,
        owner: bool = False,
        detached: bool = False,
        route: SSHRoute | None = None,
    ) -> None:
        self._thread = LoopThread(
            "kernelkit-attached",
            owner=f"the AttachedKernel of {info.kernel_name or info.nanny!r}",
            error=ProvisioningError,
        )
        self._thread.start()
        # Made on the loop thread: its sockets belong to that loop.
        try:
            self._kernel: AsyncAttachedKernel = self._thread.call(
                lambda: AsyncAttachedKernel(info, owner=owner, detached=detached, route=route)
            )
        except BaseException:
            self._thread.close()
            raise

    @classmethod
    def from_connection_file(
        cls,
        path: str | os.PathLike[str],
        *,
        owner: bool = False,
        detached: bool = False,
        check_mode: bool = True,
    ) -> AttachedKernel:
        """See :meth:`AsyncAttachedKernel.from_connection_file`."""
        info = read_connection_file(path, check_mode=check_mode)
        if not info.nanny:
            # Checked before a thread is started for nothing.
            AsyncAttachedKernel.check_has_nanny(info)
        return cls(info, owner=owner, detached=detached, route=ssh_route_of(path))

    def __enter__(self) -> AttachedKernel:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connection_info(self) -> ConnectionInfo:
        return self._kernel.connection_info

    @property
    def pid(self) -> int | None:
        return self._kernel.pid

    @property
    def state(self) -> str:
        return self._kernel.state

    @property
    def output_at_death(self) -> list[str]:
        return list(self._kernel.output_at_death)

    def start(self, *, timeout: float = 10.0) -> None:
        """See :meth:`AsyncAttachedKernel.start`."""
        self._thread.run(self._kernel.start(timeout=timeout))

    def client(self, **options: Any) -> KernelClient:
        """A blocking client for the kernel (not yet started), told of its death."""
        kc = self._thread.call(lambda: self._kernel.client(**options))
        return KernelClient.from_async_client(kc, loop_thread=self._thread)

    def is_alive(self) -> bool:
        return self._thread.run(self._kernel.is_alive())

    def interrupt_kernel(self) -> None:
        self._thread.run(self._kernel.interrupt_kernel())

    def signal_kernel(self, signum: int) -> None:
        self._thread.run(self._kernel.signal_kernel(signum))

    def restart_kernel(self, *, grace: float = 1.0) -> None:
        self._thread.run(self._kernel.restart_kernel(grace=grace))

    def shutdown_kernel(self, *, now: bool = False, grace: float = 1.0) -> None:
        self._thread.run(self._kernel.shutdown_kernel(now=now, grace=grace))

    def detach(self) -> None:
        self._thread.run(self._kernel.detach())

    def output_tail(self, n: int = 20) -> list[str]:
        return self._thread.run(self._kernel.output_tail(n))

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the kernel dies (up to ``timeout`` seconds); its exit status.

        Raises:
            TimeoutError: it still runs after ``timeout`` seconds.
        """
        return self._thread.run(asyncio.wait_for(self._kernel.wait(), timeout))

    def close(self) -> None:
        """Close the connection to the nanny (the kernel is left as it is) and the thread."""
        try:
            if not self._thread.closed:
                self._thread.run(self._kernel.aclose())
        finally:
            self._thread.close_when_released()
