"""The blocking face of the warm-kernel pool: :class:`KernelPool`.

It drives a :class:`~kernelkit.manager.AsyncKernelPool` from one event-loop thread it owns. A
kernel it hands out keeps running on that thread (its process watch and shutdown live
there), so the thread lives until the pool is closed *and* every kernel it handed out has
been shut down. Each handed-out kernel comes with a ready :class:`~kernelkit.KernelClient`
on that same thread: one thread, however many kernels are out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType

from kernelkit._errors import ManagerError
from kernelkit._loopthread import LoopThread
from kernelkit.client import KernelClient
from kernelkit.discovery import KernelFinder
from kernelkit.manager._multi_blocking import ManagedKernel
from kernelkit.manager._pool import AsyncKernelPool
from kernelkit.manager._pooled import PoolKernel
from kernelkit.manager._types import DEFAULT_SHUTDOWN_WAIT_TIME
from kernelkit.provisioning import KernelProvisionerFactory, SandboxChoice

__all__ = [
    "KernelPool",
    "PooledKernel",
]


class PooledKernel:
    """A ready kernel from a :class:`KernelPool`; the caller owns it now.

    ``manager`` is its blocking :class:`ManagedKernel`, ``client`` a started
    :class:`~kernelkit.KernelClient` whose ``wait_for_ready`` is done. :meth:`close` (or
    ``with``) closes the client and shuts the kernel down.
    """

    __slots__ = ("_closed", "client", "manager")

    def __init__(self, manager: ManagedKernel, client: KernelClient) -> None:
        self.manager = manager
        self.client = client
        self._closed = False

    def __repr__(self) -> str:
        return f"<PooledKernel {self.manager.kernel_name} id={self.manager.kernel_id}>"

    @property
    def kernel_id(self) -> str:
        return self.manager.kernel_id

    @property
    def kernel_name(self) -> str:
        return self.manager.kernel_name

    def close(self, *, now: bool = False) -> None:
        """Close the client and shut the kernel down (``now``: at once, no grace)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.client.close()
        finally:
            self.manager.shutdown_kernel(now=now)

    def __enter__(self) -> PooledKernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class KernelPool:
    """Keeps warm kernels ready to hand out (blocking); one loop thread for the pool.

    Parameters, rules and errors as :class:`~kernelkit.manager.AsyncKernelPool`. Use as
    ``with KernelPool("python3", size=2) as pool:`` (fills in the background,
    closes at the end) or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        kernel_name: PoolKernel | None = None,
        *,
        size: int = 1,
        max_total: int | None = None,
        max_age: float | None = None,
        ready_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        autorestart: bool = True,
        restart_limit: int = 5,
        shutdown_wait_time: float = DEFAULT_SHUTDOWN_WAIT_TIME,
        provisioner_factory: KernelProvisionerFactory | None = None,
        finder: KernelFinder | None = None,
        sandbox: SandboxChoice = None,
    ) -> None:
        self._pool = AsyncKernelPool(
            kernel_name,
            size=size,
            max_total=max_total,
            max_age=max_age,
            ready_timeout=ready_timeout,
            env=env,
            inherit_env=inherit_env,
            cwd=cwd,
            autorestart=autorestart,
            restart_limit=restart_limit,
            shutdown_wait_time=shutdown_wait_time,
            provisioner_factory=provisioner_factory,
            finder=finder,
            sandbox=sandbox,
        )
        self._thread = LoopThread(
            "kernelkit-kernel-pool", owner="the kernel pool", error=ManagerError
        )
        self._thread.hold()  # the pool's own hold, released by close()
        self._closed = False

    def __repr__(self) -> str:
        return repr(self._pool).replace("<AsyncKernelPool", "<KernelPool", 1)

    @property
    def async_pool(self) -> AsyncKernelPool:
        """The asyncio pool (use it only on :attr:`loop`)."""
        return self._pool

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._thread.loop

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread of this pool, its kernels and their clients."""
        return self._thread

    @property
    def closed(self) -> bool:
        return self._closed

    def set_size(self, kernel_name: PoolKernel, size: int) -> None:
        """See :meth:`AsyncKernelPool.set_size`."""
        self._thread.call(self._pool.set_size, kernel_name, size)

    def size(self, kernel_name: PoolKernel | None = None) -> int:
        """See :meth:`AsyncKernelPool.size`."""
        return self._thread.call(self._pool.size, kernel_name)

    def ready_count(self, kernel_name: PoolKernel | None = None) -> int:
        """See :meth:`AsyncKernelPool.ready_count`."""
        return self._thread.call(self._pool.ready_count, kernel_name)

    @property
    def total(self) -> int:
        return self._thread.call(lambda: self._pool.total)

    def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """See :meth:`AsyncKernelPool.start`."""
        self._check_open()
        self._thread.run(self._pool.start(wait=wait, timeout=timeout))

    def acquire(
        self, kernel_name: PoolKernel | None = None, *, timeout: float | None = 60.0
    ) -> PooledKernel:
        """A ready kernel, yours to keep (see :meth:`AsyncKernelPool.acquire`), with a ready
        blocking client (the one the pool readied, on this pool's loop thread).

        Raises:
            PoolExhausted, KernelStartError, KernelTimeout, ManagerError: as
                :meth:`AsyncKernelPool.acquire`.
        """
        self._check_open()
        # Held from before the take, so the thread cannot stop under a kernel in hand;
        # released when this kernel is shut down.
        if not self._thread.hold():
            raise ManagerError("the kernel pool is closed")
        try:
            pooled = self._thread.run(self._pool.acquire(kernel_name, timeout=timeout))
        except BaseException:
            self._thread.release()
            raise
        kernel = ManagedKernel(pooled.manager, self._thread, held=True)
        try:
            # The pool's client is connected and ready, on this thread's loop: its
            # blocking face is ready too (no second connection, no second wait).
            client = KernelClient.from_async_client(pooled.client, loop_thread=self._thread)
        except BaseException:
            kernel.shutdown_kernel(now=True)
            raise
        return PooledKernel(kernel, client)

    def _check_open(self) -> None:
        if self._closed:
            raise ManagerError("the kernel pool is closed")

    def close(self, *, now: bool = False) -> None:
        """Shut down every kernel in the pool (in parallel). The loop thread stops once
        every kernel handed out has been shut down too."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._thread.loop is not None:
                self._thread.run(self._pool.aclose(now=now))
        finally:
            self._thread.release()
            self._thread.close_when_released()

    def __enter__(self) -> KernelPool:
        self.start(wait=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
