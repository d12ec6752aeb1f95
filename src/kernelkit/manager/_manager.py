"""The asyncio manager of one owned kernel: :class:`AsyncKernelManager`.

It launches the kernel through the provisioner its kernel type names (a kernelspec's
``metadata.kernel_provisioner``, or a provider's :class:`~kernelkit.discovery.LaunchPlan`)
with the one launch sequence (:func:`kernelkit.provisioning.launch_provisioner`),
watches its process, and controls its lifetime:

- Shutdown: interrupt, ``shutdown_request`` on control (from a private client with its
  own identity), then wait on the process itself (an event, never polling steps), then
  SIGTERM, then SIGKILL, to the whole process group; the connection file is removed.
- Auto-restart driven by process exit: a task awaits the provisioner's ``wait()``, so a
  restart begins the moment the process exits unexpectedly. Consecutive deaths within
  the stable-start window count against ``restart_limit``.
- Every client made by :meth:`AsyncKernelManager.client` is kept informed: it fails its
  pending requests at once with :class:`~kernelkit.KernelDied` (exit code and the last
  lines the kernel wrote) when the process dies, and accepts requests again after a
  restart, reconnecting first if the kernel came back on other ports.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import (
    KernelDied,
    KernelError,
    KernelTimeout,
    ManagerError,
)
from kernelkit.client import DEFAULT_FIRST_CONTACT_TIMEOUT, AsyncKernelClient
from kernelkit.discovery import KernelFinder, KernelType, LaunchPlan
from kernelkit.manager._choice import KernelChoice
from kernelkit.manager._stopping import graceful_stop
from kernelkit.manager._types import (
    DEFAULT_SHUTDOWN_WAIT_TIME,
    DEFAULT_STABLE_START_TIME,
    KernelState,
    KernelWatcher,
    Notices,
    RestartCallback,
    RestartEvent,
    same_endpoints,
)
from kernelkit.provisioning import (
    DEFAULT_PROVISIONER,
    KernelProvisionerBase,
    KernelProvisionerFactory,
    SandboxChoice,
    check_sandbox_choice,
    default_factory,
    launch_provisioner,
    sandboxed_launch,
)
from kernelkit.specs import KernelSpec
from kernelkit.transport import ZMQTransport

__all__ = ["AsyncKernelManager"]

log = logging.getLogger("kernelkit.manager")

# How long an interrupt_request (message mode) may take to be answered.
_INTERRUPT_REPLY_TIMEOUT = 10.0


class AsyncKernelManager:
    """Starts one kernel, watches it, and interrupts, restarts and stops it (asyncio).

    What to launch, one of:

    - ``kernel_name``: a kernelspec name (default ``python3``, looked up when the kernel
      starts), or a kernel type id as ``kernelkit list`` shows it (``spec/python3``,
      ``env/<env-id>/python3``, ``<provider>/<name>``: kernelspec names never contain
      ``/``, ids always do), looked up with ``finder`` (default: one shared
      :class:`~kernelkit.discovery.KernelFinder`);
    - ``kernel_spec``: a :class:`~kernelkit.specs.KernelSpec`;
    - ``kernel_type``: a :class:`~kernelkit.discovery.KernelType` from a finder.

    A kernel type (by id or given) is launched from its provider's
    :class:`~kernelkit.discovery.LaunchPlan`, prepared in a worker thread at each
    :meth:`start_kernel` (activation may run scripts) and reused by restarts: the
    provisioner it names, with its configuration, and its complete environment (an
    environment's activated one, never merged over ``os.environ``). A kernelspec is
    launched with the provisioner its ``metadata.kernel_provisioner`` names (default:
    the local one). ``provisioner_factory`` makes the provisioner (default: the one
    process-wide :func:`~kernelkit.provisioning.default_factory`). ``sandbox`` (True, or
    the sandbox's options such as ``{"memory": "512M", "wall_clock": 30}``) runs a local
    kernel in a sandbox (:class:`~kernelkit.provisioning.SandboxProvisioner`), its
    environment activated as without one.

    Auto-restart (``autorestart``): when the process exits without being asked to, the
    kernel is relaunched at once with the same arguments, on the same ports when they
    are still free (else on new ones, which its clients follow). A kernel that dies
    more than ``restart_limit`` times in a row, each time within the stable-start
    window (the provisioner's ``get_stable_start_time``, recommended
    ``stable_start_time``), is left dead.

    Callbacks (each called on the event loop with a :class:`~kernelkit.KernelError`;
    they must not block; an exception in one is logged):

    - ``on_died``: the process exited unexpectedly (a :class:`~kernelkit.KernelDied` with
      exit code and output tail), called at once, before any restart;
    - ``on_restarted``: the kernel was restarted after that death (gets the death);
    - ``on_dead``: the kernel stays dead (autorestart off, or the restart limit reached,
      or relaunching failed): gets the last error.

    ``shutdown_wait_time`` is the recommended budget of a graceful stop (the provisioner
    may override it): half for the kernel to exit after ``shutdown_request``, half after
    SIGTERM, then SIGKILL.

    Use as ``async with AsyncKernelManager("python3") as km:`` (start, then shut down).
    """

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
        if restart_limit < 0:
            raise ManagerError(f"restart_limit must be >= 0, not {restart_limit}")
        if shutdown_wait_time < 0 or stable_start_time < 0:
            raise ManagerError("shutdown_wait_time and stable_start_time must be >= 0")
        self._choice = KernelChoice(
            kernel_name, kernel_spec=kernel_spec, kernel_type=kernel_type, finder=finder
        )
        self._kernel_id = kernel_id or str(uuid.uuid4())
        self._factory = provisioner_factory
        self._sandbox = check_sandbox_choice(sandbox)
        self.autorestart = autorestart
        self.restart_limit = restart_limit
        self._shutdown_wait_time = shutdown_wait_time
        self._stable_start_time = stable_start_time
        self._notices = Notices(lambda: f"{self.kernel_name} ({self._kernel_id})")
        for event, callback in (("died", on_died), ("restart", on_restarted), ("dead", on_dead)):
            if callback is not None:
                self._notices.add_callback(callback, event)  # type: ignore[arg-type]

        self._provisioner: KernelProvisionerBase | None = None
        self._state: KernelState = "new"
        self._resume = False  # the next start_kernel continues after shutdown(restart=True)
        self._lock = asyncio.Lock()
        self._launch_env: Mapping[str, str] | None = None
        self._launch_inherit_env = True
        self._launch_cwd: str | None = None
        self._launch_extra: tuple[str, ...] = ()
        self._announced: ConnectionInfo | None = None  # what the clients are connected to
        self._control: AsyncKernelClient | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._generation = 0
        self._started_at = 0.0
        self._quick_deaths = 0
        self._last_error: KernelError | None = None

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        return f"<AsyncKernelManager {self.kernel_name} id={self._kernel_id} {self._state}>"

    @property
    def state(self) -> KernelState:
        """Where the kernel is in its life: new, running, restarting, dead or stopped."""
        return self._state

    @property
    def kernel_id(self) -> str:
        return self._kernel_id

    @property
    def kernel_name(self) -> str:
        """The kernelspec's name, or the kernel type's id when started by id or type (the
        one asked for, before anything is looked up)."""
        return self._choice.name

    @property
    def kernel_spec(self) -> KernelSpec:
        """The kernelspec (looked up on first use; for a kernel type, its plan's once
        started).

        Raises:
            NoSuchKernel: no kernelspec or kernel type has that name (the error lists the
                available ones).
            KernelSpecError: the kernelspec is broken (the error lists its problems).
            DiscoveryError: the kernel type has no kernelspec.
        """
        return self._choice.spec()

    @property
    def kernel_type(self) -> KernelType | None:
        """The kernel type, when started by id or type (looked up on first use; None for
        a kernelspec).

        Raises:
            NoSuchKernel: no kernel type has that id (the error lists close ones).
        """
        return self._choice.kernel_type()

    @property
    def launch_plan(self) -> LaunchPlan | None:
        """The plan the kernel was last started from (None before the first start, and
        for a kernelspec)."""
        return self._choice.plan

    @property
    def provisioner(self) -> KernelProvisionerBase | None:
        """The provisioner of the current (or last) launch; None before the first."""
        return self._provisioner

    @property
    def has_kernel(self) -> bool:
        """True while a kernel process is held (started and not yet cleaned up)."""
        return self._provisioner is not None and self._provisioner.has_process

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """Where the kernel listens (None until it has started)."""
        p = self._provisioner
        return p.connection_info if p is not None else None

    @property
    def connection_file(self) -> Path | None:
        """The kernel's connection file while it runs (for ``jupyter console --existing``),
        if its provisioner writes one."""
        p = self._provisioner
        if p is None or not p.has_process:
            return None
        return p.connection_file

    @property
    def last_error(self) -> KernelError | None:
        """Why the kernel last died or failed to restart (None if it never did)."""
        return self._last_error

    def output_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the kernel wrote to stdout/stderr (if captured)."""
        p = self._provisioner
        return p.output_tail(n) if p is not None else []

    # ------------------------------------------------------------------ callbacks

    def add_restart_callback(
        self, callback: RestartCallback, event: RestartEvent = "restart"
    ) -> None:
        """Call ``callback(error)`` on ``event``: ``"died"``, ``"restart"`` or ``"dead"``.

        Raises:
            ManagerError: an unknown event.
        """
        self._notices.add_callback(callback, event)

    def remove_restart_callback(
        self, callback: RestartCallback, event: RestartEvent = "restart"
    ) -> None:
        """Stop calling ``callback`` on ``event`` (nothing happens if it was not added).

        Raises:
            ManagerError: an unknown event.
        """
        self._notices.remove_callback(callback, event)

    # ------------------------------------------------------------------ clients

    def client(
        self,
        *,
        heartbeat: bool = True,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 1.0,
        first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
    ) -> AsyncKernelClient:
        """A new client for this kernel (not started: ``async with km.client() as kc``).

        It has its own socket identity, and the manager keeps it informed: it fails at
        once with :class:`~kernelkit.KernelDied` when the kernel dies, and works again
        after a restart.

        Raises:
            ManagerError: the kernel was never started, or was shut down.
        """
        info = self._announced
        if info is None or self._state in ("new", "stopped"):
            raise ManagerError(
                f"kernel {self.kernel_name!r} ({self._kernel_id}) is {self._state}: "
                "call start_kernel() first"
            )
        kc = AsyncKernelClient.from_connection_info(
            info,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
        )
        self.add_client(kc)
        return kc

    def add_client(self, client: KernelWatcher) -> None:
        """Keep ``client`` informed of this kernel's deaths and restarts (clients from
        :meth:`client` are added already). Held weakly."""
        self._notices.add_watcher(client)
        if self._state == "dead" and self._last_error is not None:
            client.notify_dead(self._last_error)

    def remove_client(self, client: KernelWatcher) -> None:
        """Stop informing ``client``."""
        self._notices.remove_watcher(client)

    # ------------------------------------------------------------------ start

    async def start_kernel(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> None:
        """Launch the kernel; returns once it listens (its connection info is known).

        ``env`` is added to the base environment (the spec's ``env`` goes on top): this
        process's environment for a kernelspec, the plan's complete environment for a
        kernel type (an environment's kernel: activated). With ``inherit_env=False``,
        ``env`` is the whole environment instead (complete as given: a variable it lacks
        stays unset). ``extra_arguments`` are appended to the spec's argv. Restarts
        reuse them all, and the plan. Nothing is left behind when the start fails.

        Raises:
            NoSuchKernel: no kernelspec or kernel type by that name (the error lists the
                available ones).
            KernelSpecError: the kernelspec or kernel type is broken.
            DiscoveryError: the kernel type cannot be launched (no kernelspec, its
                provider is missing or prepared no usable plan).
            EnvironmentActivationError: the kernel's environment could not be activated.
            KernelStartError: the kernel could not be started or died while starting
                (with its exit code and the last lines it wrote).
            ProvisionerNotFound, ProvisioningError: the provisioner is unusable.
            ManagerError: a kernel is already running.
        """
        async with self._lock:
            if self.has_kernel:
                raise ManagerError(
                    f"kernel {self.kernel_name!r} ({self._kernel_id}) is already running; "
                    "shut it down or restart it"
                )
            launch = await self._choice.prepare(self._factory or default_factory())
            if self._provisioner is None:
                factory = self._factory or default_factory()
                name, config = sandboxed_launch(
                    self._sandbox,
                    kernel_name=launch.spec.name,
                    provisioner_name=launch.provisioner_name,
                    config=launch.provisioner_config,
                    local_provisioner=DEFAULT_PROVISIONER,
                )
                self._provisioner = factory.create_provisioner_instance(
                    self._kernel_id, launch.spec, provisioner_name=name, config=config
                )
            if launch.base_env is None:
                self._launch_env = dict(env) if env is not None else None
                self._launch_inherit_env = inherit_env
            else:
                # The plan's environment is complete: the caller's goes on top of it, and
                # it is never merged over os.environ (what activation removed stays out).
                base = launch.base_env if inherit_env else {}
                self._launch_env = {**base, **(env or {})}
                self._launch_inherit_env = False
            self._launch_cwd = cwd
            self._launch_extra = tuple(extra_arguments)
            if not self._resume:
                # Clients of an earlier run were told it ended; a start after
                # shutdown_kernel(restart=True) is a restart: its clients follow it.
                self._notices.forget_watchers()
                self._announced = None
            self._resume = False
            self._last_error = None
            self._quick_deaths = 0
            try:
                await self._launch(self._provisioner, restart=False)
            except BaseException:
                self._state = "new"
                raise
            self._started(self._provisioner)

    async def _launch(self, p: KernelProvisionerBase, *, restart: bool) -> ConnectionInfo:
        """The one launch sequence with this start's arguments; on failure nothing is left
        running (with ``restart``, the key and ports are kept for the next attempt)."""
        try:
            return await launch_provisioner(
                p,
                env=self._launch_env,
                inherit_env=self._launch_inherit_env,
                cwd=self._launch_cwd,
                extra_arguments=self._launch_extra,
                restart=restart,
            )
        except BaseException:
            await self._close_control()
            raise

    def _started(self, p: KernelProvisionerBase) -> None:
        """A kernel is running: inform the clients and watch its process."""
        info = p.connection_info
        assert info is not None
        old = self._announced
        if old is not None:
            # Moved (the old ports were taken meanwhile): the clients reconnect to the new
            # ones; the info passed is what tells them to.
            self._notices.notify_restarted(None if same_endpoints(old, info) else info)
        self._announced = info
        self._state = "running"
        loop = asyncio.get_running_loop()
        self._generation += 1
        self._started_at = loop.time()
        self._supervisor = loop.create_task(
            self._supervise(p, self._generation), name=f"kernelkit-supervise-{self._kernel_id}"
        )

    # ------------------------------------------------------------------ supervision

    async def _supervise(self, p: KernelProvisionerBase, generation: int) -> None:
        """Wait for the process to exit; an exit nobody asked for is a death."""
        status = await p.wait()
        if generation != self._generation or self._supervisor is not asyncio.current_task():
            return
        try:
            await self._handle_death(p, status)
        except Exception as exc:
            # Nobody awaits this task: report the failure instead of losing it.
            log.exception("kernel %s (%s): supervising failed", self.kernel_name, self._kernel_id)
            error = (
                exc
                if isinstance(exc, KernelError)
                else ManagerError(
                    f"kernel {self.kernel_name!r}: supervising failed: {type(exc).__name__}: {exc}"
                )
            )
            self._last_error = error
            self._state = "dead"
            self._notices.notify_dead(error)
            self._notices.fire("dead", error)

    async def _handle_death(self, p: KernelProvisionerBase, status: int | None) -> None:
        """The process exited on its own: tell everyone, clean up, restart if allowed."""
        loop = asyncio.get_running_loop()
        uptime = loop.time() - self._started_at
        error: KernelError = p.died_error(status, "the kernel process exited unexpectedly")
        log.warning("%s", error)
        self._last_error = error
        self._notices.notify_dead(error)  # first: pending requests fail now
        # Reap it, stop what it left in its group, remove its file; keep key and ports.
        await self._release(p, restart=True)
        self._state = "restarting" if self.autorestart else "dead"
        self._notices.fire("died", error)
        if not self.autorestart:
            self._notices.fire("dead", error)
            return
        stable = p.get_stable_start_time(recommended=self._stable_start_time)
        if uptime >= stable:
            self._quick_deaths = 0
        death = error
        while True:
            self._quick_deaths += 1
            if self._quick_deaths > self.restart_limit:
                if isinstance(error, KernelDied):
                    error = KernelDied(
                        f"the kernel died {self._quick_deaths} times in a row within "
                        f"{stable:g} s of starting; not restarting it again",
                        kernel_name=error.kernel_name,
                        exit_code=error.exit_code,
                        output_tail=error.output_tail,
                    )
                log.error("%s", error)
                self._last_error = error
                self._state = "dead"
                self._notices.fire("dead", error)
                return
            log.info(
                "kernel %s (%s): restarting (%d of at most %d in a row)",
                self.kernel_name,
                self._kernel_id,
                self._quick_deaths,
                self.restart_limit,
            )
            try:
                await self._launch(p, restart=True)
            except KernelError as exc:
                # A failed relaunch is one more quick death.
                log.warning("kernel %s: restart failed: %s", self.kernel_name, exc)
                error = exc
                self._last_error = exc
                continue
            break
        self._last_error = None
        self._started(p)
        self._notices.fire("restart", death)

    async def _stop_supervising(self) -> None:
        task, self._supervisor = self._supervisor, None
        self._generation += 1  # an exit from now on is expected
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        # asyncio.wait: never raises the task's own CancelledError into us, but does
        # propagate a cancellation of the caller.
        await asyncio.wait({task})

    # ------------------------------------------------------------------ control client

    async def _control_client(self) -> AsyncKernelClient:
        """A private client (own identity, no heartbeat) for shutdown and interrupt."""
        if self._control is None or self._control.closed:
            info = self.connection_info
            if info is None:
                raise ManagerError(f"kernel {self.kernel_name!r} has no connection info")
            # linger 0: once the kernel is gone, nothing queued for it matters.
            transport = ZMQTransport(info, linger_ms=0)
            control = AsyncKernelClient(transport, kernel_name=info.kernel_name, heartbeat=False)
            await control.start()
            self._control = control
        return self._control

    async def _close_control(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            await control.aclose()

    # ------------------------------------------------------------------ stop

    async def _release(self, p: KernelProvisionerBase, *, restart: bool) -> None:
        """Kill the process if it still runs, then release everything the launch held
        (the provisioner's cleanup reaps it and stops what it left in its group)."""
        try:
            if p.has_process and await p.poll() is None:
                await p.stop(grace=0, restart=restart)
        finally:
            await self._close_control()
            await p.cleanup(restart=restart)

    async def _stop(self, p: KernelProvisionerBase, *, now: bool, restart: bool) -> int | None:
        """Stop the kernel if it runs and release everything; returns its exit status."""
        try:
            if p.has_process and await p.poll() is None:
                if now:
                    await p.stop(grace=0, restart=restart)
                else:
                    wait_time = p.get_shutdown_wait_time(recommended=self._shutdown_wait_time)
                    await self._graceful_stop(p, wait_time, restart=restart)
        finally:
            await self._release(p, restart=restart)
        return await p.poll()

    async def _graceful_stop(
        self, p: KernelProvisionerBase, wait_time: float, *, restart: bool
    ) -> int | None:
        try:
            control: AsyncKernelClient | None = await self._control_client()
        except KernelError as exc:
            log.warning("kernel %s: cannot send shutdown_request (%s)", self.kernel_name, exc)
            control = None
        return await graceful_stop(
            p, control, wait_time=wait_time, restart=restart, kernel_name=self.kernel_name
        )

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """Stop the kernel and release everything it held.

        Graceful: interrupt, ``shutdown_request`` on control, wait for the process to
        exit (up to half the shutdown wait time), SIGTERM, wait the other half, SIGKILL;
        signals reach the whole process group. ``now=True`` skips the request and the
        waiting (SIGKILL at once). The connection file is removed (kept with
        ``restart=True``, as are the key and ports for the next start). Clients from
        :meth:`client` fail from then on with :class:`~kernelkit.KernelDied`. Does nothing
        if no kernel runs.
        """
        async with self._lock:
            await self._stop_supervising()
            p = self._provisioner
            if p is None:
                return
            status = await self._stop(p, now=now, restart=restart)
            if self._state != "new":
                self._state = "stopped"
            self._resume = restart
            self._notices.notify_dead(
                KernelDied(
                    "the kernel is being restarted by its manager"
                    if restart
                    else "the kernel was shut down by its manager",
                    kernel_name=self.kernel_name,
                    exit_code=status,
                )
            )

    async def restart_kernel(self, now: bool = False) -> None:
        """Stop the kernel (as :meth:`shutdown_kernel`) and start it again with the same
        arguments, on the same ports when they are still free.

        Clients from :meth:`client` fail their pending requests and then work again
        (call their ``wait_for_ready``), on the new ports if the old ones were taken.
        Also starts a kernel that died and stayed dead.

        Raises:
            KernelStartError: the new kernel could not be started.
            ManagerError: the kernel was never started.
        """
        async with self._lock:
            await self._stop_supervising()
            p = self._provisioner
            if p is None or self._announced is None or self._state in ("new", "stopped"):
                raise ManagerError(
                    f"kernel {self.kernel_name!r} ({self._kernel_id}) is {self._state}: "
                    "call start_kernel() first"
                )
            self._state = "restarting"
            status = await self._stop(p, now=now, restart=True)
            self._notices.notify_dead(
                KernelDied(
                    "the kernel is being restarted by its manager",
                    kernel_name=self.kernel_name,
                    exit_code=status,
                )
            )
            self._quick_deaths = 0
            try:
                await self._launch(p, restart=True)
            except KernelError as exc:
                self._last_error = exc
                self._state = "dead"
                self._notices.notify_dead(exc)
                raise
            self._last_error = None
            self._started(p)

    async def interrupt_kernel(self) -> None:
        """Interrupt what the kernel is running.

        ``interrupt_mode`` "signal": SIGINT to the kernel's process group; "message": an
        ``interrupt_request`` on the control channel (waits for its reply).

        Raises:
            ManagerError: no kernel is running.
            KernelTimeout: no interrupt_reply in time (message mode).
        """
        p = self._provisioner
        if p is None or not p.has_process:
            raise ManagerError(
                f"cannot interrupt kernel {self.kernel_name!r} ({self._kernel_id}): "
                "it is not running"
            )
        if p.interrupt_mode == "signal":
            await p.send_signal(signal.SIGINT)
            return
        control = await self._control_client()
        try:
            await control.interrupt(timeout=_INTERRUPT_REPLY_TIMEOUT)
        except KernelTimeout:
            raise KernelTimeout(
                f"kernel {self.kernel_name!r} did not answer interrupt_request within "
                f"{_INTERRUPT_REPLY_TIMEOUT:g} s"
            ) from None

    async def signal_kernel(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group.

        Raises:
            ManagerError: no kernel is running.
        """
        p = self._provisioner
        if p is None or not p.has_process:
            raise ManagerError(f"kernel {self.kernel_name!r} is not running")
        await p.send_signal(signum)

    async def is_alive(self) -> bool:
        """True while the kernel process runs."""
        p = self._provisioner
        return p is not None and p.has_process and await p.poll() is None

    # ------------------------------------------------------------------ context manager

    async def __aenter__(self) -> AsyncKernelManager:
        if not self.has_kernel:
            await self.start_kernel()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown_kernel()
