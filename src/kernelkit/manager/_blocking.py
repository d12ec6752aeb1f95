"""The blocking manager of one owned kernel: :class:`KernelManager`.

It holds an :class:`~kernelkit.manager.AsyncKernelManager` and one event-loop thread,
opened by :meth:`KernelManager.start_kernel` (or ``with``) and stopped by
:meth:`KernelManager.close`. Each method hands its coroutine to that loop and waits for
the result; every decision lives in the async manager. The kernel's process is watched
on that loop, so auto-restart and the clients' death notices need no further thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelError, ManagerError
from kernelkit._loopthread import LoopThread
from kernelkit.client import DEFAULT_FIRST_CONTACT_TIMEOUT, AsyncKernelClient, KernelClient
from kernelkit.discovery import KernelFinder, KernelType, LaunchPlan
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.manager._start_new import not_ready_error
from kernelkit.manager._types import (
    DEFAULT_SHUTDOWN_WAIT_TIME,
    DEFAULT_STABLE_START_TIME,
    KernelState,
    KernelWatcher,
    RestartCallback,
    RestartEvent,
)
from kernelkit.provisioning import KernelProvisionerBase, KernelProvisionerFactory, SandboxChoice
from kernelkit.specs import KernelSpec

__all__ = [
    "KernelManager",
    "start_new_kernel",
]

T = TypeVar("T")


class _ManagerFace:
    """What every blocking face of one :class:`AsyncKernelManager` shares: properties
    read from the async manager, and calls run on a loop thread. Subclasses set
    ``_manager`` and ``_thread``; they differ in how they own that thread."""

    __slots__ = ()

    _manager: AsyncKernelManager
    _thread: LoopThread
    #: Appended to the "not running" error of :meth:`client`.
    _not_running_hint = ""

    @property
    def async_manager(self) -> AsyncKernelManager:
        """The asyncio manager this one drives (use it only on :attr:`loop`)."""
        return self._manager

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop of this manager's thread (None before it is opened)."""
        return self._thread.loop

    @property
    def loop_thread(self) -> LoopThread:
        """This manager's loop thread (its clients share it; so may clients of your own)."""
        return self._thread

    # -- properties ------------------------------------------------------------------

    @property
    def kernel_id(self) -> str:
        return self._manager.kernel_id

    @property
    def kernel_name(self) -> str:
        return self._manager.kernel_name

    @property
    def kernel_spec(self) -> KernelSpec:
        """See :attr:`AsyncKernelManager.kernel_spec`."""
        return self._manager.kernel_spec

    @property
    def kernel_type(self) -> KernelType | None:
        """See :attr:`AsyncKernelManager.kernel_type`."""
        return self._manager.kernel_type

    @property
    def launch_plan(self) -> LaunchPlan | None:
        """See :attr:`AsyncKernelManager.launch_plan`."""
        return self._manager.launch_plan

    @property
    def provisioner(self) -> KernelProvisionerBase | None:
        """The provisioner of the current launch (use its methods only on :attr:`loop`)."""
        return self._manager.provisioner

    @property
    def state(self) -> KernelState:
        return self._manager.state

    @property
    def has_kernel(self) -> bool:
        return self._manager.has_kernel

    @property
    def connection_info(self) -> ConnectionInfo | None:
        return self._manager.connection_info

    @property
    def connection_file(self) -> Path | None:
        return self._manager.connection_file

    @property
    def last_error(self) -> KernelError | None:
        return self._manager.last_error

    @property
    def autorestart(self) -> bool:
        return self._manager.autorestart

    @autorestart.setter
    def autorestart(self, value: bool) -> None:
        self._manager.autorestart = value

    def output_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the kernel wrote to stdout/stderr (if captured)."""
        result: list[str] = self._thread.call(self._manager.output_tail, n)
        return result

    # -- callbacks and clients -------------------------------------------------------

    def add_restart_callback(
        self, callback: RestartCallback, event: RestartEvent = "restart"
    ) -> None:
        """See :meth:`AsyncKernelManager.add_restart_callback` (called on the loop thread)."""
        self._thread.call(self._manager.add_restart_callback, callback, event)

    def remove_restart_callback(
        self, callback: RestartCallback, event: RestartEvent = "restart"
    ) -> None:
        """See :meth:`AsyncKernelManager.remove_restart_callback`."""
        self._thread.call(self._manager.remove_restart_callback, callback, event)

    def client(
        self,
        *,
        heartbeat: bool = True,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 1.0,
        first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
    ) -> KernelClient:
        """A new blocking client for this kernel (not started: ``with km.client() as kc``).

        It runs on this manager's loop thread (so its blocking methods cannot be called
        from this manager's callbacks), has its own socket identity, and the manager keeps
        it informed of deaths and restarts.

        Raises:
            ManagerError: the kernel was never started, or was shut down.
        """
        self._thread.call(self._check_running)
        akc: AsyncKernelClient = self._thread.call(
            lambda: self._manager.client(
                heartbeat=heartbeat,
                heartbeat_interval=heartbeat_interval,
                heartbeat_timeout=heartbeat_timeout,
                first_contact_timeout=first_contact_timeout,
            )
        )
        # The async client is the one the manager informs (added by its client()).
        return KernelClient.from_async_client(akc, loop_thread=self._thread)

    def _check_running(self) -> None:
        m = self._manager
        if m.provisioner is None or m.state in ("new", "stopped"):
            raise ManagerError(
                f"kernel {m.kernel_name!r} ({m.kernel_id}) is {m.state}{self._not_running_hint}"
            )


class KernelManager(_ManagerFace):
    """Starts one kernel, watches it, and interrupts, restarts and stops it (blocking).

    Parameters and behaviour as :class:`AsyncKernelManager`; callbacks run on this
    manager's loop thread. Use as ``with KernelManager("python3") as km:`` (start, then
    shut down and stop the thread), or call :meth:`start_kernel` and, at the end,
    :meth:`close`. Safe to call from several threads; not from inside a callback.

    Threads: one event-loop thread per manager (started by the first call that needs
    it), shared by the :class:`~kernelkit.KernelClient`\\ s from :meth:`client`. A client
    still open when the manager closes keeps that thread until it is closed too.
    """

    _not_running_hint = ": call start_kernel() first"

    def __init__(
        self,
        kernel_name: str | None = None,
        *,
        kernel_spec: KernelSpec | None = None,
        kernel_type: KernelType | None = None,
        finder: KernelFinder | None = None,
        kernel_id: str | None = None,
        provisioner_factory: KernelProvisionerFactory | None = None,
        autorestart: bool = True,
        restart_limit: int = 5,
        shutdown_wait_time: float = DEFAULT_SHUTDOWN_WAIT_TIME,
        stable_start_time: float = DEFAULT_STABLE_START_TIME,
        on_died: RestartCallback | None = None,
        on_restarted: RestartCallback | None = None,
        on_dead: RestartCallback | None = None,
        sandbox: SandboxChoice = None,
    ) -> None:
        self._manager = AsyncKernelManager(
            kernel_name,
            kernel_spec=kernel_spec,
            kernel_type=kernel_type,
            finder=finder,
            kernel_id=kernel_id,
            provisioner_factory=provisioner_factory,
            autorestart=autorestart,
            restart_limit=restart_limit,
            shutdown_wait_time=shutdown_wait_time,
            stable_start_time=stable_start_time,
            on_died=on_died,
            on_restarted=on_restarted,
            on_dead=on_dead,
            sandbox=sandbox,
        )
        self._thread = LoopThread(
            f"kernelkit-manager-{self._manager.kernel_id}",
            owner=f"the KernelManager of {self._manager.kernel_name!r}",
            error=ManagerError,
        )
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        m = self._manager
        return f"<KernelManager {m.kernel_name} id={m.kernel_id} {m.state}>"

    # -- the loop thread -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise ManagerError(f"the KernelManager of {self.kernel_name!r} is closed")
        return self._thread.run(coro)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the loop thread (if open) and return its result."""
        return self._thread.call(fn, *args)

    def close(self) -> None:
        """Shut the kernel down (gracefully) if it runs, then stop the loop thread."""
        if self._thread.in_thread():
            raise ManagerError("KernelManager.close() called from its own loop thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self._thread.loop is not None:
                self._thread.run(self._manager.shutdown_kernel())
        finally:
            self._thread.close_when_released()  # its clients may still hold it

    def __enter__(self) -> KernelManager:
        if not self._manager.has_kernel:
            try:
                self.start_kernel()
            except BaseException:
                self.close()  # no __exit__ follows a failed __enter__: stop the thread here
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add_client(self, client: KernelWatcher) -> None:
        """See :meth:`AsyncKernelManager.add_client`."""
        self._call(self._manager.add_client, client)

    def remove_client(self, client: KernelWatcher) -> None:
        """See :meth:`AsyncKernelManager.remove_client`."""
        self._call(self._manager.remove_client, client)

    # -- lifecycle -------------------------------------------------------------------

    def start_kernel(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> None:
        """See :meth:`AsyncKernelManager.start_kernel` (opens the loop thread first)."""
        self._run(
            self._manager.start_kernel(
                env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments
            )
        )

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """See :meth:`AsyncKernelManager.shutdown_kernel`."""
        if self._thread.loop is None:
            return  # never started
        self._run(self._manager.shutdown_kernel(now=now, restart=restart))

    def restart_kernel(self, now: bool = False) -> None:
        """See :meth:`AsyncKernelManager.restart_kernel`."""
        self._run(self._manager.restart_kernel(now=now))

    def interrupt_kernel(self) -> None:
        """See :meth:`AsyncKernelManager.interrupt_kernel`."""
        self._run(self._manager.interrupt_kernel())

    def signal_kernel(self, signum: int) -> None:
        """See :meth:`AsyncKernelManager.signal_kernel`."""
        self._run(self._manager.signal_kernel(signum))

    def is_alive(self) -> bool:
        """True while the kernel process runs."""
        if self._thread.loop is None or self._closed:
            return False
        return self._run(self._manager.is_alive())


def start_new_kernel(
    kernel_name: str | None = None,
    *,
    kernel_spec: KernelSpec | None = None,
    kernel_type: KernelType | None = None,
    finder: KernelFinder | None = None,
    startup_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | None = None,
    extra_arguments: Sequence[str] = (),
    autorestart: bool = True,
    provisioner_factory: KernelProvisionerFactory | None = None,
) -> tuple[KernelManager, KernelClient]:
    """Start a kernel and return its manager and a started client, once it is ready.

    The caller closes both: ``kc.close()`` and ``km.close()``.

    Raises:
        NoSuchKernel, KernelSpecError, KernelStartError: as :meth:`KernelManager.start_kernel`;
            KernelStartError also when the kernel dies before it is ready.
        KernelTimeout: not ready within ``startup_timeout`` seconds (the kernel is stopped).
    """
    km = KernelManager(
        kernel_name,
        kernel_spec=kernel_spec,
        kernel_type=kernel_type,
        finder=finder,
        autorestart=autorestart,
        provisioner_factory=provisioner_factory,
    )
    try:
        km.start_kernel(env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments)
        kc = km.client()
    except BaseException:
        km.close()
        raise
    try:
        kc.start()
        kc.wait_for_ready(timeout=startup_timeout)
    except BaseException as exc:
        tail = km.output_tail()
        kc.close()
        km.shutdown_kernel(now=True)
        km.close()
        error = not_ready_error(exc, kernel_name=km.kernel_name, timeout=startup_timeout, tail=tail)
        if error is None:
            raise
        raise error from exc
    return km, kc
