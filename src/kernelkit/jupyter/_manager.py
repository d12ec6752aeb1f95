"""jupyter_client's ``AsyncKernelManager``, running on kernelkit: :class:`AsyncKernelManager`.

Tools that insist on a subclass of jupyter_client's manager (nbclient, nbconvert's
``ExecutePreprocessor.kernel_manager_class``, papermill) get one whose kernel is
launched, watched and stopped by a :class:`kernelkit.AsyncKernelManager`: the kernel
chooses its ports, an environment's kernel starts with the environment activated, its
output is captured, and a death says why (exit code, last lines). ``kernel_name`` is a
kernelspec name or a kernel type id as ``kernelkit list`` shows it.

Not auto-restarted by default (``autorestart`` is False here): a tool running a notebook
must see the death, not a fresh kernel that lost the notebook's state.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from jupyter_client.kernelspec import KernelSpec as JupyterKernelSpec
from jupyter_client.manager import AsyncKernelManager as JupyterAsyncKernelManager
from traitlets import Bool

from kernelkit import AsyncKernelManager as KernelkitManager
from kernelkit import ConnectionInfo, KernelError, KernelSpec
from kernelkit.jupyter._client import AsyncBridgeClient

__all__ = ["AsyncKernelManager", "is_ipykernel", "jupyter_kernel_spec"]


def is_ipykernel(spec: KernelSpec) -> bool:
    """True for a kernelspec that runs ipykernel (its argv names it)."""
    return spec.language.lower() == "python" and any("ipykernel" in arg for arg in spec.argv)


def jupyter_kernel_spec(spec: KernelSpec) -> JupyterKernelSpec:
    """kernelkit's kernelspec as jupyter_client's ``KernelSpec``."""
    data = spec.to_dict()
    return JupyterKernelSpec(
        argv=list(data["argv"]),
        display_name=data.get("display_name", ""),
        language=data.get("language", ""),
        interrupt_mode=data.get("interrupt_mode", "signal"),
        env=dict(data.get("env") or {}),
        metadata=dict(data.get("metadata") or {}),
        resource_dir=str(spec.resource_dir),
    )


def _added_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """What ``env`` adds to this process's environment. jupyter_client's callers pass a
    whole environment (``os.environ`` plus theirs); kernelkit adds variables to the base
    one, which for an environment's kernel is the activated environment: putting all of
    ``os.environ`` over it would undo the activation."""
    if env is None:
        return None
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


class AsyncKernelManager(JupyterAsyncKernelManager):
    """jupyter_client's ``AsyncKernelManager`` whose kernel kernelkit launches and talks
    to. ``client()`` returns an :class:`~kernelkit.jupyter.AsyncBridgeClient`.

    Use wherever a tool takes a ``kernel_manager_class``, e.g.
    ``jupyter nbconvert --execute
    --ExecutePreprocessor.kernel_manager_class=kernelkit.jupyter.AsyncKernelManager``.
    """

    autorestart = Bool(
        False, config=True, help="Restart the kernel when it dies (kernelkit's restarter)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kk: KernelkitManager | None = None
        self._kk_name: str | None = None
        self._jspec: JupyterKernelSpec | None = None

    # -- the kernelkit manager underneath ----------------------------------------------

    @property
    def kernelkit_manager(self) -> KernelkitManager:
        """The :class:`kernelkit.AsyncKernelManager` underneath (made for the current
        ``kernel_name`` on first use)."""
        name = self.kernel_name or "python3"
        if self._kk is None or (self._kk_name != name and not self._kk.has_kernel):
            self._kk = self._new_kernelkit_manager(name)
            self._kk_name = name
            self._jspec = None
        return self._kk

    def _new_kernelkit_manager(self, name: str) -> KernelkitManager:
        """The kernelkit manager for ``name`` (a subclass may look the name up elsewhere
        and watch the kernel's deaths)."""
        return KernelkitManager(
            name, kernel_id=self.kernel_id or None, autorestart=self.autorestart
        )

    @property
    def kernel_spec(self) -> JupyterKernelSpec | None:
        """The kernelspec, as jupyter_client's ``KernelSpec`` (for an environment's kernel,
        the one it is launched with).

        Raises:
            NoSuchKernel, KernelSpecError, DiscoveryError: see
                :attr:`kernelkit.AsyncKernelManager.kernel_spec`.
        """
        if self._jspec is None:
            self._jspec = jupyter_kernel_spec(self.kernelkit_manager.kernel_spec)
        return self._jspec

    @property
    def ipykernel(self) -> bool:
        try:
            return is_ipykernel(self.kernelkit_manager.kernel_spec)
        except KernelError:
            return False

    @property
    def has_kernel(self) -> bool:
        return self._kk is not None and self._kk.has_kernel

    @property
    def last_error(self) -> KernelError | None:
        """Why the kernel last died (exit code and last lines), if it did."""
        return self._kk.last_error if self._kk is not None else None

    def _take_connection(self, info: ConnectionInfo | None) -> None:
        """Show where the kernel listens through jupyter_client's traits (for
        ``get_connection_info`` and tools that open their own sockets)."""
        if info is None:
            return
        self.transport = info.transport
        self.ip = info.ip
        self.shell_port = info.shell_port
        self.iopub_port = info.iopub_port
        self.stdin_port = info.stdin_port
        self.control_port = info.control_port
        self.hb_port = info.hb_port
        self.session.key = info.key
        self.session.signature_scheme = info.signature_scheme
        path = self._kk.connection_file if self._kk is not None else None
        if path is not None:
            self.connection_file = str(path)
            self._connection_file_written = True

    # -- lifetime ------------------------------------------------------------------------

    def start_restarter(self) -> None:
        """kernelkit's manager restarts the kernel itself (``autorestart``)."""

    def stop_restarter(self) -> None:
        """kernelkit's manager restarts the kernel itself (``autorestart``)."""

    async def start_kernel(  # type: ignore[override]
        self,
        *,
        extra_arguments: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        kernel_id: str | None = None,
        **_: Any,
    ) -> None:
        """Launch the kernel with kernelkit (``kernel_id`` names it as a multi-kernel
        manager asks; other keywords jupyter_client accepts, such as Popen arguments, are
        ignored).

        Raises:
            KernelStartError, NoSuchKernel, KernelSpecError, ...: as
                :meth:`kernelkit.AsyncKernelManager.start_kernel`.
        """
        self._attempted_start = True
        if kernel_id is not None and kernel_id != self.kernel_id and not self.has_kernel:
            self.kernel_id = kernel_id
            self._kk = None  # made under another id
        ready = self.ready
        try:
            kk = self.kernelkit_manager  # looking the name up may fail too
            await kk.start_kernel(
                env=_added_env(env), cwd=cwd, extra_arguments=tuple(extra_arguments or ())
            )
        except BaseException as exc:
            error = self._start_error(exc)
            if not ready.done():
                ready.set_exception(error)
                ready.exception()  # retrieved: nobody else may await it
            if error is exc:
                raise
            raise error from exc
        self._take_connection(kk.connection_info)
        if not ready.done():
            ready.set_result(None)

    def _start_error(self, exc: BaseException) -> BaseException:
        """What a failed start raises (and puts in ``ready``): ``exc`` itself here; a
        subclass may translate it for its caller."""
        return exc

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
        """Stop the kernel and release everything it held (see
        :meth:`kernelkit.AsyncKernelManager.shutdown_kernel`)."""
        if self._kk is not None:
            await self._kk.shutdown_kernel(now=now, restart=restart)

    async def restart_kernel(  # type: ignore[override]
        self, now: bool = False, newports: bool = False, **_: Any
    ) -> None:
        """Restart the kernel (same ports when still free; ``newports`` is ignored)."""
        if self._kk is None:
            raise RuntimeError("Cannot restart the kernel. No previous call to 'start_kernel'.")
        await self._kk.restart_kernel(now=now)
        self._take_connection(self._kk.connection_info)

    async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        """Release what a stopped kernel held (kernelkit's shutdown already did; a kernel
        still running is stopped at once)."""
        if self._kk is not None and self._kk.has_kernel:
            await self._kk.shutdown_kernel(now=True, restart=restart)

    async def interrupt_kernel(self) -> None:  # type: ignore[override]
        if self._kk is None:
            raise RuntimeError("Cannot interrupt kernel. No kernel is running!")
        await self._kk.interrupt_kernel()

    async def signal_kernel(self, signum: int) -> None:  # type: ignore[override]
        if self._kk is None:
            raise RuntimeError("Cannot signal kernel. No kernel is running!")
        await self._kk.signal_kernel(signal.Signals(signum))

    async def is_alive(self) -> bool:  # type: ignore[override]
        return self._kk is not None and await self._kk.is_alive()

    def client(self, **_: Any) -> AsyncBridgeClient:  # type: ignore[override]
        """A client for this kernel (``await kc.start_channels()`` first).

        Raises:
            ManagerError: the kernel was never started, or was shut down.
        """
        kk = self.kernelkit_manager
        # No heartbeat: the manager watches the process itself, and tools that run one
        # coroutine at a time (nbconvert, papermill) stop the loop between calls.
        return AsyncBridgeClient(kk.client(heartbeat=False), alive=self.is_alive)
