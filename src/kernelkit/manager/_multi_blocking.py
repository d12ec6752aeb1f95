"""The blocking multi-kernel manager: :class:`MultiKernelManager`, on one loop thread.

:class:`MultiKernelManager` drives an :class:`AsyncMultiKernelManager` from one event-loop
thread it owns, however many kernels it runs: every kernel's manager, process watch and
shutdown run on that loop. :meth:`MultiKernelManager.get_kernel` returns a
:class:`ManagedKernel`, the blocking face of one of those kernels on the same thread
(a :class:`~kernelkit.manager.KernelManager` would own a thread per kernel). Blocking
clients (:meth:`ManagedKernel.client`) are :class:`~kernelkit.KernelClient`\\ s on that same
thread: however many kernels and clients, one thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType

from kernelkit._errors import ManagerError
from kernelkit._loopthread import LoopThread
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.manager._blocking import _ManagerFace
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.manager._multi import AsyncMultiKernelManager, CullCallback
from kernelkit.manager._types import DEFAULT_SHUTDOWN_WAIT_TIME
from kernelkit.provisioning import KernelProvisionerFactory, SandboxChoice
from kernelkit.specs import KernelSpec

__all__ = [
    "ManagedKernel",
    "MultiKernelManager",
]


class ManagedKernel(_ManagerFace):
    """The blocking face of one kernel whose manager runs on a shared loop thread.

    Handed out by :meth:`MultiKernelManager.get_kernel` (and by the blocking pool). It
    has :class:`~kernelkit.manager.KernelManager`'s methods; each runs on the shared
    thread. :meth:`client` returns a :class:`~kernelkit.KernelClient` on that thread too.
    """

    __slots__ = ("_held", "_manager", "_thread")

    def __init__(
        self, manager: AsyncKernelManager, thread: LoopThread, *, held: bool = False
    ) -> None:
        self._manager = manager
        self._thread = thread
        # True when this kernel keeps the shared thread alive until it is shut down.
        self._held = held

    def __repr__(self) -> str:
        m = self._manager
        return f"<ManagedKernel {m.kernel_name} id={m.kernel_id} {m.state}>"

    def is_alive(self) -> bool:
        """True while the kernel process runs."""
        if self._thread.closed:
            return False
        return self._thread.run(self._manager.is_alive())

    def interrupt_kernel(self) -> None:
        """See :meth:`AsyncKernelManager.interrupt_kernel`."""
        self._thread.run(self._manager.interrupt_kernel())

    def signal_kernel(self, signum: int) -> None:
        """See :meth:`AsyncKernelManager.signal_kernel`."""
        self._thread.run(self._manager.signal_kernel(signum))

    def restart_kernel(self, now: bool = False) -> None:
        """See :meth:`AsyncKernelManager.restart_kernel`."""
        self._thread.run(self._manager.restart_kernel(now=now))

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """See :meth:`AsyncKernelManager.shutdown_kernel`."""
        if self._thread.closed:
            return
        try:
            self._thread.run(self._manager.shutdown_kernel(now=now, restart=restart))
        finally:
            if self._held and not restart:
                self._held = False
                self._thread.release()


class MultiKernelManager:
    """Starts and controls many kernels by id (blocking), all on one loop thread.

    Parameters and behaviour as :class:`AsyncMultiKernelManager` (``on_cull`` runs on the
    loop thread). Use as ``with MultiKernelManager() as mkm:`` or call :meth:`close` at
    the end (it shuts every kernel down, then stops the thread). Safe to call from
    several threads; starts from several threads run concurrently.
    """

    def __init__(
        self,
        *,
        default_kernel_name: str = "python3",
        finder: KernelFinder | None = None,
        provisioner_factory: KernelProvisionerFactory | None = None,
        autorestart: bool = True,
        restart_limit: int = 5,
        shutdown_wait_time: float = DEFAULT_SHUTDOWN_WAIT_TIME,
        cull_idle_timeout: float | None = None,
        cull_interval: float = 60.0,
        on_cull: CullCallback | None = None,
    ) -> None:
        self._mkm = AsyncMultiKernelManager(
            default_kernel_name=default_kernel_name,
            finder=finder,
            provisioner_factory=provisioner_factory,
            autorestart=autorestart,
            restart_limit=restart_limit,
            shutdown_wait_time=shutdown_wait_time,
            cull_idle_timeout=cull_idle_timeout,
            cull_interval=cull_interval,
            on_cull=on_cull,
        )
        self._thread = LoopThread(
            "kernelkit-multi-kernel-manager", owner="the MultiKernelManager", error=ManagerError
        )

    def __repr__(self) -> str:
        return f"<MultiKernelManager {len(self._mkm)} kernels>"

    @property
    def async_manager(self) -> AsyncMultiKernelManager:
        """The asyncio multi-kernel manager (use it only on :attr:`loop`)."""
        return self._mkm

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._thread.loop

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread every kernel and client of this manager runs on."""
        return self._thread

    @property
    def closed(self) -> bool:
        return self._thread.closed

    def list_kernel_ids(self) -> list[str]:
        """The ids of the kernels started here and not shut down, oldest first."""
        return self._thread.call(self._mkm.list_kernel_ids)

    def __len__(self) -> int:
        return len(self.list_kernel_ids())

    def __contains__(self, kernel_id: object) -> bool:
        return kernel_id in self.list_kernel_ids()

    def __iter__(self) -> Iterator[str]:
        return iter(self.list_kernel_ids())

    def get_kernel(self, kernel_id: str) -> ManagedKernel:
        """The blocking face of kernel ``kernel_id``.

        Raises:
            UnknownKernelId: no such kernel here (the error lists the known ids).
        """
        return ManagedKernel(self._thread.call(self._mkm.get_kernel, kernel_id), self._thread)

    def start_kernel(
        self,
        kernel_name: str | None = None,
        *,
        kernel_spec: KernelSpec | None = None,
        kernel_type: KernelType | None = None,
        kernel_id: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        extra_arguments: Sequence[str] = (),
        sandbox: SandboxChoice = None,
    ) -> str:
        """See :meth:`AsyncMultiKernelManager.start_kernel`."""
        return self._thread.run(
            self._mkm.start_kernel(
                kernel_name,
                kernel_spec=kernel_spec,
                kernel_type=kernel_type,
                kernel_id=kernel_id,
                env=env,
                inherit_env=inherit_env,
                cwd=cwd,
                extra_arguments=extra_arguments,
                sandbox=sandbox,
            )
        )

    def start_kernels(
        self,
        count: int,
        kernel_name: str | None = None,
        *,
        kernel_spec: KernelSpec | None = None,
        kernel_type: KernelType | None = None,
    ) -> list[str]:
        """Start ``count`` kernels concurrently; return their ids once all listen (the
        kernel chosen as in :meth:`start_kernel`).

        Raises:
            KernelStartError (and the rest of :meth:`start_kernel`'s errors): the first
                failure; the kernels that did start are shut down again.
        """

        async def start_all() -> list[str]:
            results = await asyncio.gather(
                *(
                    self._mkm.start_kernel(
                        kernel_name, kernel_spec=kernel_spec, kernel_type=kernel_type
                    )
                    for _ in range(count)
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                started = [r for r in results if isinstance(r, str)]
                await asyncio.gather(
                    *(self._mkm.shutdown_kernel(k, now=True) for k in started),
                    return_exceptions=True,
                )
                raise errors[0]
            return [r for r in results if isinstance(r, str)]

        return self._thread.run(start_all())

    def shutdown_kernel(self, kernel_id: str, now: bool = False) -> None:
        """See :meth:`AsyncMultiKernelManager.shutdown_kernel`."""
        self._thread.run(self._mkm.shutdown_kernel(kernel_id, now=now))

    def restart_kernel(self, kernel_id: str, now: bool = False) -> None:
        """See :meth:`AsyncMultiKernelManager.restart_kernel`."""
        self._thread.run(self._mkm.restart_kernel(kernel_id, now=now))

    def interrupt_kernel(self, kernel_id: str) -> None:
        """See :meth:`AsyncMultiKernelManager.interrupt_kernel`."""
        self._thread.run(self._mkm.interrupt_kernel(kernel_id))

    def is_alive(self, kernel_id: str) -> bool:
        """See :meth:`AsyncMultiKernelManager.is_alive`."""
        return self._thread.run(self._mkm.is_alive(kernel_id))

    def cull_idle_kernels(self) -> list[str]:
        """See :meth:`AsyncMultiKernelManager.cull_idle_kernels`."""
        return self._thread.run(self._mkm.cull_idle_kernels())

    def shutdown_all(self, now: bool = False) -> None:
        """See :meth:`AsyncMultiKernelManager.shutdown_all` (the thread keeps running)."""
        if self._thread.loop is None:
            return  # nothing was ever started
        self._thread.run(self._mkm.shutdown_all(now=now))

    def close(self, now: bool = False) -> None:
        """Shut every kernel down (in parallel) and stop the loop thread."""
        if self._thread.closed:
            return
        try:
            self.shutdown_all(now=now)
        finally:
            self._thread.close_when_released()  # clients still open keep it until closed

    def __enter__(self) -> MultiKernelManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
