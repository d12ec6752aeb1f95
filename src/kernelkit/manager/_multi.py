"""Many kernels by id from one event loop: :class:`AsyncMultiKernelManager`.

Each kernel has its own :class:`~kernelkit.manager.AsyncKernelManager`; there is no lock
around a start, so many kernels start at once and a slow one never holds up the others.
``shutdown_all`` stops every kernel in parallel: each one takes at most its own
shutdown wait time, whatever the others do.

Culling (off unless ``cull_idle_timeout`` is set): each kernel gets one extra client that
only listens to IOPub (no heartbeat, no requests: a few sockets, no thread, no task). Every
IOPub message counts as activity, and ``status`` messages give the execution state per
request (busy/idle per parent ``msg_id``, so subshells are handled): a kernel with any
request busy is never culled, whoever sent it. A housekeeping task looks every
``cull_interval`` seconds and shuts down the kernels idle longer than
``cull_idle_timeout``, logging each one and calling ``on_cull``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType

from kernelkit._errors import KernelError, ManagerError, UnknownKernelId
from kernelkit.client import AsyncKernelClient
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.manager._choice import check_kernel_choice
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.manager._types import DEFAULT_SHUTDOWN_WAIT_TIME
from kernelkit.protocol import Message
from kernelkit.provisioning import KernelProvisionerFactory, SandboxChoice
from kernelkit.specs import KernelSpec

__all__ = [
    "AsyncMultiKernelManager",
    "CullCallback",
]

log = logging.getLogger("kernelkit.manager")

#: Called (on the event loop) after a kernel was culled: its id and how long it was idle
#: (seconds). It must not block; an exception in it is logged.
CullCallback = Callable[[str, float], object]


class _Activity:
    """What a kernel's IOPub says about it: when it last spoke, which requests are busy."""

    __slots__ = ("_loop", "busy", "last")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.last = loop.time()
        self.busy: set[str] = set()

    def seen(self, msg: Message) -> None:
        self.last = self._loop.time()
        if msg.header.msg_type != "status":
            return
        state = msg.content.get("execution_state")
        parent = msg.parent_id
        if state == "busy" and parent:
            self.busy.add(parent)
        elif state == "idle" and parent:
            self.busy.discard(parent)
        elif state in ("starting", "restarting", "dead"):
            self.busy.clear()  # a new (or no) kernel process: nothing of the old one runs

    def reset(self, _error: object = None) -> None:
        self.last = self._loop.time()
        self.busy.clear()


class _Kernel:
    __slots__ = ("activity", "manager", "monitor")

    def __init__(self, manager: AsyncKernelManager) -> None:
        self.manager = manager
        self.monitor: AsyncKernelClient | None = None
        self.activity: _Activity | None = None


class AsyncMultiKernelManager:
    """Starts and controls many kernels by id, all from one asyncio event loop.

    Every kernel gets an :class:`~kernelkit.manager.AsyncKernelManager` made with this
    manager's options (``provisioner_factory``, ``autorestart``, ``restart_limit``,
    ``shutdown_wait_time``, and ``finder``, which looks kernel type ids up).
    ``default_kernel_name`` (a kernelspec name or kernel type id) is what
    :meth:`start_kernel` starts when told nothing. Use as
    ``async with AsyncMultiKernelManager() as mkm:`` (every kernel is shut down at the
    end), or call :meth:`shutdown_all` yourself.

    Culling idle kernels is off by default; ``cull_idle_timeout`` (seconds) turns it on:
    a kernel that has had no IOPub traffic for that long and has no request busy is shut
    down; the check runs every ``cull_interval`` seconds (and on demand with
    :meth:`cull_idle_kernels`). See the module docstring for what counts as activity.
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
        check_kernel_choice(default_kernel_name)
        if cull_idle_timeout is not None and cull_idle_timeout <= 0:
            raise ManagerError(
                f"cull_idle_timeout must be positive seconds (or None for no culling), "
                f"not {cull_idle_timeout!r}"
            )
        if cull_interval <= 0:
            raise ManagerError(f"cull_interval must be positive seconds, not {cull_interval!r}")
        if shutdown_wait_time < 0:
            raise ManagerError(f"shutdown_wait_time must be >= 0, not {shutdown_wait_time!r}")
        self.default_kernel_name = default_kernel_name
        self._finder = finder
        self._provisioner_factory = provisioner_factory
        self._autorestart = autorestart
        self._restart_limit = restart_limit
        self._shutdown_wait_time = shutdown_wait_time
        self.cull_idle_timeout = cull_idle_timeout
        self.cull_interval = cull_interval
        self._on_cull = on_cull
        self._kernels: dict[str, _Kernel] = {}
        # Ids whose start is in flight, with a future that is done when the start ended.
        self._starting: dict[str, asyncio.Future[None]] = {}
        self._culler: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<AsyncMultiKernelManager {len(self._kernels)} kernels>"

    # ------------------------------------------------------------------ lookup

    def list_kernel_ids(self) -> list[str]:
        """The ids of the kernels started here and not shut down, oldest first."""
        return list(self._kernels)

    def __len__(self) -> int:
        return len(self._kernels)

    def __contains__(self, kernel_id: object) -> bool:
        return kernel_id in self._kernels

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._kernels))

    def _entry(self, kernel_id: str) -> _Kernel:
        entry = self._kernels.get(kernel_id)
        if entry is not None:
            return entry
        if kernel_id in self._starting:
            raise ManagerError(f"kernel {kernel_id!r} is still starting; wait for start_kernel")
        known = ", ".join(self._kernels) if self._kernels else "none"
        raise UnknownKernelId(
            f"no kernel with id {kernel_id!r} in this manager (known ids: {known}); "
            "it may have been shut down or culled"
        )

    def get_kernel(self, kernel_id: str) -> AsyncKernelManager:
        """The manager of kernel ``kernel_id``.

        Raises:
            UnknownKernelId: no such kernel here (the error lists the known ids).
            ManagerError: that kernel is still starting.
        """
        return self._entry(kernel_id).manager

    # ------------------------------------------------------------------ start

    async def start_kernel(
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
        """Start a kernel and return its id once it listens (as
        :meth:`AsyncKernelManager.start_kernel`; call the client's ``wait_for_ready``).

        ``kernel_name`` (a kernelspec name or a kernel type id; default
        :attr:`default_kernel_name`), ``kernel_spec`` or ``kernel_type`` picks the
        kernel; ``kernel_id`` chooses the id (default: a new uuid). ``env`` and
        ``inherit_env`` as :meth:`AsyncKernelManager.start_kernel`: an environment's
        kernel gets exactly its activated environment (``env`` on top). Starts run
        concurrently: await many of them with ``asyncio.gather``. ``sandbox`` (True or the
        sandbox's options) runs this kernel in the sandbox provisioner, as
        :class:`AsyncKernelManager`'s option.

        Raises:
            ManagerError: ``kernel_id`` is already in use, or the kernel is named wrongly.
            NoSuchKernel, KernelSpecError, DiscoveryError, EnvironmentActivationError,
                KernelStartError, ProvisioningError: as
                :meth:`AsyncKernelManager.start_kernel` (nothing is left running).
        """
        if kernel_id is None:
            kernel_id = str(uuid.uuid4())
        elif not isinstance(kernel_id, str) or not kernel_id:
            raise ManagerError(f"kernel_id must be a non-empty string, not {kernel_id!r}")
        if kernel_id in self._kernels or kernel_id in self._starting:
            raise ManagerError(
                f"kernel id {kernel_id!r} is already in use in this manager; "
                "pick another or omit it for a new one"
            )
        check_kernel_choice(kernel_name, kernel_spec=kernel_spec, kernel_type=kernel_type)
        if kernel_spec is None and kernel_type is None and kernel_name is None:
            kernel_name = self.default_kernel_name
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._starting[kernel_id] = done
        try:
            km = AsyncKernelManager(
                kernel_name,
                kernel_spec=kernel_spec,
                kernel_type=kernel_type,
                finder=self._finder,
                kernel_id=kernel_id,
                provisioner_factory=self._provisioner_factory,
                autorestart=self._autorestart,
                restart_limit=self._restart_limit,
                shutdown_wait_time=self._shutdown_wait_time,
                sandbox=sandbox,
            )
            entry = _Kernel(km)
            await km.start_kernel(
                env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments
            )
            try:
                if self.cull_idle_timeout is not None:
                    await self._watch_activity(entry, loop)
            except BaseException:
                await _stop_quietly(entry, now=True)
                raise
            self._kernels[kernel_id] = entry
        finally:
            del self._starting[kernel_id]
            done.set_result(None)
        if self.cull_idle_timeout is not None and self._culler is None:
            self._culler = loop.create_task(self._cull_periodically(), name="kernelkit-culler")
        return kernel_id

    async def _watch_activity(self, entry: _Kernel, loop: asyncio.AbstractEventLoop) -> None:
        activity = _Activity(loop)
        monitor = entry.manager.client(heartbeat=False)
        monitor.add_iopub_handler(activity.seen)
        await monitor.start()
        entry.manager.add_restart_callback(activity.reset, "restart")
        entry.monitor, entry.activity = monitor, activity

    # ------------------------------------------------------------------ control by id

    async def shutdown_kernel(self, kernel_id: str, now: bool = False) -> None:
        """Shut kernel ``kernel_id`` down (as :meth:`AsyncKernelManager.shutdown_kernel`)
        and forget it.

        Raises:
            UnknownKernelId: no such kernel here.
        """
        entry = self._entry(kernel_id)
        del self._kernels[kernel_id]
        await _stop(entry, now=now)

    async def restart_kernel(self, kernel_id: str, now: bool = False) -> None:
        """Restart kernel ``kernel_id`` (as :meth:`AsyncKernelManager.restart_kernel`).

        Raises:
            UnknownKernelId: no such kernel here.
            KernelStartError: the new kernel could not be started.
        """
        entry = self._entry(kernel_id)
        await entry.manager.restart_kernel(now=now)
        if entry.activity is not None:
            entry.activity.reset()

    async def interrupt_kernel(self, kernel_id: str) -> None:
        """Interrupt kernel ``kernel_id`` (as :meth:`AsyncKernelManager.interrupt_kernel`).

        Raises:
            UnknownKernelId: no such kernel here.
        """
        await self._entry(kernel_id).manager.interrupt_kernel()

    async def is_alive(self, kernel_id: str) -> bool:
        """True while kernel ``kernel_id``'s process runs.

        Raises:
            UnknownKernelId: no such kernel here.
        """
        return await self._entry(kernel_id).manager.is_alive()

    async def shutdown_all(self, now: bool = False) -> None:
        """Shut every kernel down, all in parallel, and stop the culling task.

        Starts still in flight are waited for first (each is bounded by its own start
        timeout), so nothing started here is left running. Each kernel takes at most its
        own shutdown wait time (``now=True``: none); one that ignores SIGTERM does not
        delay the others.

        Raises:
            ManagerError: some kernels failed to shut down cleanly (all were attempted;
                the first error is chained).
        """
        await self._stop_culler()
        if self._starting:
            await asyncio.wait(list(self._starting.values()))
        entries = list(self._kernels.values())
        self._kernels.clear()
        if not entries:
            return
        results = await asyncio.gather(
            *(_stop(entry, now=now) for entry in entries), return_exceptions=True
        )
        errors = [
            (e, r) for e, r in zip(entries, results, strict=True) if isinstance(r, BaseException)
        ]
        for entry, error in errors[1:]:
            log.error("kernel %s failed to shut down: %s", entry.manager.kernel_id, error)
        if errors:
            entry, first = errors[0]
            if not isinstance(first, Exception):
                raise first  # CancelledError, KeyboardInterrupt: not ours to translate
            raise ManagerError(
                f"{len(errors)} of {len(entries)} kernels failed to shut down cleanly; "
                f"first: kernel {entry.manager.kernel_id}: {first}"
            ) from first

    # ------------------------------------------------------------------ culling

    async def cull_idle_kernels(self) -> list[str]:
        """Shut down, now, every kernel idle longer than ``cull_idle_timeout``; return
        their ids. Does nothing when culling is off.

        Idle means no IOPub message for that long and no request busy (a kernel whose
        busy request never reported idle is never culled).
        """
        timeout = self.cull_idle_timeout
        if timeout is None:
            return []
        now = asyncio.get_running_loop().time()
        idle: list[tuple[str, float]] = []
        for kernel_id, entry in self._kernels.items():
            activity = entry.activity
            if activity is None or activity.busy:
                continue
            idle_for = now - activity.last
            if idle_for > timeout:
                idle.append((kernel_id, idle_for))
        if not idle:
            return []
        entries = [self._kernels.pop(kernel_id) for kernel_id, _ in idle]
        for (kernel_id, idle_for), entry in zip(idle, entries, strict=True):
            log.info(
                "culling kernel %s (%s): idle for %.1f s (limit %g s)",
                kernel_id,
                entry.manager.kernel_name,
                idle_for,
                timeout,
            )
        results = await asyncio.gather(
            *(_stop(entry, now=False) for entry in entries), return_exceptions=True
        )
        for (kernel_id, idle_for), result in zip(idle, results, strict=True):
            if isinstance(result, BaseException):
                log.error("culling kernel %s: shutdown failed: %s", kernel_id, result)
            if self._on_cull is not None:
                try:
                    self._on_cull(kernel_id, idle_for)
                except Exception:
                    log.exception("the on_cull callback failed for kernel %s", kernel_id)
        return [kernel_id for kernel_id, _ in idle]

    async def _cull_periodically(self) -> None:
        # Housekeeping, not a hot path: a fixed period is what culling is defined by.
        while True:
            await asyncio.sleep(self.cull_interval)
            try:
                await self.cull_idle_kernels()
            except KernelError:
                log.exception("culling idle kernels failed")

    async def _stop_culler(self) -> None:
        task, self._culler = self._culler, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait({task})

    # ------------------------------------------------------------------ context manager

    async def __aenter__(self) -> AsyncMultiKernelManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown_all()


async def _stop(entry: _Kernel, *, now: bool) -> None:
    monitor, entry.monitor = entry.monitor, None
    try:
        if monitor is not None:
            await monitor.aclose()
    finally:
        await entry.manager.shutdown_kernel(now=now)


async def _stop_quietly(entry: _Kernel, *, now: bool) -> None:
    """Stop a kernel whose start is being abandoned (the start's error is what counts)."""
    try:
        await _stop(entry, now=now)
    except KernelError as exc:
        log.error("kernel %s: cleanup after a failed start failed: %s", entry.manager, exc)
