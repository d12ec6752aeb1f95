"""The asyncio manager of one owned kernel: :class:`AsyncKernelManager`.

It launches the kernel through the provisioner its kernel type names (a kernelspec's
``metadata.kernel_provisioner``, or a provider's :class:`~kernelkit.discovery.LaunchPlan`)
with the one launch sequence (:func:`kernelkit.provisioning.launch_provisioner`),
watches its process (``_restarts``), and controls its lifetime:

- Shutdown (``_stopping``): interrupt, ``shutdown_request`` on control, wait on the
  process (an event), SIGTERM, SIGKILL, to the whole process group. A kernel on a
  server (its provisioner makes its transports, ``_clients``) is stopped by the server.
- Auto-restart the moment the process exits unexpectedly; consecutive deaths within
  the stable-start window count against ``restart_limit``. Never for a kernel on a
  server: the server restarts it, and its clients follow.
- Clients from :meth:`AsyncKernelManager.client` fail pending requests at once with
  :class:`~kernelkit.KernelDied` when the kernel dies, and work again after a restart.
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
    ManagerError,
)
from kernelkit.client import DEFAULT_FIRST_CONTACT_TIMEOUT, AsyncKernelClient
from kernelkit.discovery import KernelFinder, KernelType, LaunchPlan
from kernelkit.manager._choice import KernelChoice, LaunchArgs, new_provisioner
from kernelkit.manager._clients import ControlClient, makes_transports, new_client
from kernelkit.manager._restarts import ExitWatch, relaunch_within_limit
from kernelkit.manager._stopping import release, stop_and_release
from kernelkit.manager._types import (
    DEFAULT_SHUTDOWN_WAIT_TIME,
    DEFAULT_STABLE_START_TIME,
    INTERRUPT_REPLY_TIMEOUT,
    KernelState,
    KernelWatcher,
    Notices,
    RestartCallback,
    RestartEvent,
    same_endpoints,
)
from kernelkit.provisioning import (
    KernelProvisionerBase,
    KernelProvisionerFactory,
    SandboxChoice,
    check_sandbox_choice,
    default_factory,
    launch_provisioner,
)
from kernelkit.specs import KernelSpec

__all__ = ["AsyncKernelManager"]

log = logging.getLogger("kernelkit.manager")


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

    Callbacks (called on the loop with a :class:`~kernelkit.KernelError`; they must not
    block; one that raises is logged):

    - ``on_died``: the process exited unexpectedly (a :class:`~kernelkit.KernelDied` with
      exit code and output tail), called at once, before any restart;
    - ``on_restarted``: the kernel was restarted after that death (gets the death);
    - ``on_dead``: the kernel stays dead (autorestart off, or the restart limit reached,
      or relaunching failed): gets the last error.

    ``shutdown_wait_time`` is the recommended budget of a graceful stop (the provisioner
    may override it): half for the kernel to exit after ``shutdown_request``, half after
    SIGTERM, then SIGKILL. Use as ``async with AsyncKernelManager("python3") as km:``.
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
        self._args = LaunchArgs()
        self._announced: ConnectionInfo | None = None  # what the clients are connected to
        self._ran = False  # a kernel was started (remote ones have no connection info)
        self._control = ControlClient()
        self._watch = ExitWatch(
            lambda: f"{self.kernel_name} ({self._kernel_id})", self._handle_death, self._failed
        )
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
        p = self._provisioner
        if p is None or not self._ran or self._state in ("new", "stopped"):
            raise ManagerError(
                f"kernel {self.kernel_name!r} ({self._kernel_id}) is {self._state}: "
                "call start_kernel() first"
            )
        kc = new_client(
            p,
            kernel_name=self._announced.kernel_name if self._announced else self.kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=None,  # the manager reports the process's exit
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
            factory = self._factory or default_factory()
            launch = await self._choice.prepare(factory)
            if self._provisioner is None:
                self._provisioner = new_provisioner(
                    launch, factory, kernel_id=self._kernel_id, sandbox=self._sandbox
                )
            self._args = LaunchArgs.of(
                launch, env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments
            )
            if not self._resume:
                # Clients of an earlier run were told it ended; a start after
                # shutdown_kernel(restart=True) is a restart: its clients follow it.
                self._notices.forget_watchers()
                self._announced = None
                self._ran = False
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
                env=self._args.env,
                inherit_env=self._args.inherit_env,
                cwd=self._args.cwd,
                extra_arguments=self._args.extra_arguments,
                restart=restart,
            )
        except BaseException:
            await self._control.aclose()
            raise

    def _started(self, p: KernelProvisionerBase) -> None:
        """A kernel is running: inform the clients and watch its process."""
        info = p.connection_info  # None for a kernel on a server (same URL after restarts)
        old = self._announced
        if self._ran:
            # Moved (the old ports were taken meanwhile): the clients reconnect to the new
            # ones; the info passed is what tells them to.
            moved = info is not None and old is not None and not same_endpoints(old, info)
            self._notices.notify_restarted(info if moved else None)
        self._announced = info
        self._ran = True
        self._state = "running"
        self._watch.watch(p)

    # ------------------------------------------------------------------ supervision

    def _failed(self, error: KernelError) -> None:
        self._last_error = error
        self._state = "dead"
        self._notices.notify_dead(error)
        self._notices.fire("dead", error)

    async def _handle_death(self, p: KernelProvisionerBase, status: int | None) -> None:
        """The process exited on its own: tell everyone, clean up, restart if allowed."""
        loop = asyncio.get_running_loop()
        uptime = loop.time() - self._watch.started_at
        # A server restarts the kernels it runs by itself (their clients follow): when its
        # provisioner says the kernel is gone, the server gave up on it, or it was deleted.
        remote = makes_transports(p)
        autorestart = self.autorestart and not remote
        error: KernelError = p.died_error(
            status,
            "the server no longer has the kernel (it kept dying, or was shut down there)"
            if remote
            else "the kernel process exited unexpectedly",
        )
        log.warning("%s", error)
        self._last_error = error
        self._notices.notify_dead(error)  # first: pending requests fail now
        # Reap it, stop what it left in its group, remove its file; keep key and ports
        # (a remote kernel's id is forgotten: the server has none by that id any more).
        await self._release(p, restart=not remote)
        self._state = "restarting" if autorestart else "dead"
        self._notices.fire("died", error)
        if not autorestart:
            self._notices.fire("dead", error)
            return
        stable = p.get_stable_start_time(recommended=self._stable_start_time)
        if uptime >= stable:
            self._quick_deaths = 0
        death = error
        failed, self._quick_deaths = await relaunch_within_limit(
            lambda: self._launch(p, restart=True),
            error=error,
            quick_deaths=self._quick_deaths,
            restart_limit=self.restart_limit,
            stable=stable,
            label=f"{self.kernel_name} ({self._kernel_id})",
        )
        if failed is not None:
            self._last_error = failed
            self._state = "dead"
            self._notices.fire("dead", failed)
            return
        self._last_error = None
        self._started(p)
        self._notices.fire("restart", death)

    # ------------------------------------------------------------------ stop

    async def _release(self, p: KernelProvisionerBase, *, restart: bool) -> None:
        await release(p, self._control, restart=restart)

    async def _stop(self, p: KernelProvisionerBase, *, now: bool, restart: bool) -> int | None:
        return await stop_and_release(
            p,
            self._control,
            now=now,
            restart=restart,
            wait_time=self._shutdown_wait_time,
            kernel_name=self.kernel_name,
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
            await self._watch.stop()
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
            await self._watch.stop()
            p = self._provisioner
            if p is None or not self._ran or self._state in ("new", "stopped"):
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
        await self._control.interrupt(
            p, kernel_name=self.kernel_name, timeout=INTERRUPT_REPLY_TIMEOUT
        )

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
