"""jupyter_server's kernel manager, running on kernelkit: :class:`ServerKernelManager`.

``jupyter server --ServerApp.kernel_spec_manager_class=kernelkit.jupyter.KernelSpecManager
--MappingKernelManager.kernel_manager_class=kernelkit.jupyter.ServerKernelManager``
(JupyterLab takes the same flags): the server's kernels are launched, watched, restarted
and stopped by a :class:`kernelkit.AsyncKernelManager`. The kernel chooses its ports, an
environment's kernel starts with its environment activated and its own interpreter, its
output is captured, and a death says why (exit code, last lines) in the kernel model's
``reason`` and the server's log. The server's own machinery (its ZeroMQ WebSocket bridge,
execution-state tracking over iopub, the culler) connects to the ports kernelkit reports,
which follow a restart that had to move them.

Auto-restart is on, as with jupyter_server's own manager: kernelkit relaunches a kernel
that died (``restart_limit`` quick deaths in a row, then it stays dead); the server's
``restart`` callbacks (clients see "restarting") fire when a death is seen, its ``dead``
callbacks when the kernel stays dead.

With kernelkit's :class:`~kernelkit.jupyter.KernelSpecManager` a kernel name is looked up
in its listing (``env--proj-1a2b3c4d--python3`` is that environment's kernel); with any
other kernelspec manager the name is a kernelspec name, or a kernel type id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.services.kernels.kernelmanager import (
    ServerKernelManager as JupyterServerKernelManager,
)
from tornado import web
from traitlets import Bool

from kernelkit import AsyncKernelManager as KernelkitManager
from kernelkit import KernelError
from kernelkit.jupyter._manager import AsyncKernelManager
from kernelkit.jupyter._specs import KernelSpecManager

__all__ = ["ServerKernelManager"]

_EVENTS = ("restart", "dead")


class ServerKernelManager(JupyterServerKernelManager, AsyncKernelManager):
    """jupyter_server's ``ServerKernelManager`` whose kernel kernelkit launches, watches
    and restarts. Use as ``--MappingKernelManager.kernel_manager_class=
    kernelkit.jupyter.ServerKernelManager``."""

    autorestart = Bool(
        True, config=True, help="Restart the kernel when it dies (kernelkit's restarter)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._callbacks: dict[str, list[Callable[[], object]]] = {e: [] for e in _EVENTS}

    def _new_kernelkit_manager(self, name: str) -> KernelkitManager:
        specs = self.kernel_spec_manager
        if isinstance(specs, KernelSpecManager):
            kk = KernelkitManager(
                kernel_type=specs.kernel_type(name),
                finder=specs.finder,
                kernel_id=self.kernel_id or None,
                autorestart=self.autorestart,
            )
        else:
            kk = super()._new_kernelkit_manager(name)
        kk.add_restart_callback(self._kernel_died, "died")
        kk.add_restart_callback(self._kernel_restarted, "restart")
        kk.add_restart_callback(self._kernel_dead, "dead")
        return kk

    def _start_error(self, exc: BaseException) -> BaseException:
        # The server answers any other exception with "Unhandled error": an HTTPError's
        # message reaches the client (kernelkit's reason: exit code, last output).
        if isinstance(exc, KernelError):
            self.reason = str(exc)
            return web.HTTPError(500, f"kernelkit could not start the kernel: {exc}")
        return exc

    # -- the server's restart callbacks, fired from kernelkit's ------------------------

    def start_restarter(self) -> None:
        """kernelkit's manager watches and restarts the kernel (``autorestart``)."""

    def stop_restarter(self) -> None:
        """kernelkit's manager watches and restarts the kernel (``autorestart``)."""

    def add_restart_callback(self, callback: Callable[[], object], event: str = "restart") -> None:
        """Call ``callback()`` when the kernel died and is being restarted (``"restart"``)
        or stays dead (``"dead"``)."""
        if event not in self._callbacks:
            raise ValueError(f"unknown restart event {event!r}: use one of {', '.join(_EVENTS)}")
        self._callbacks[event].append(callback)

    def remove_restart_callback(
        self, callback: Callable[[], object], event: str = "restart"
    ) -> None:
        """Stop calling ``callback`` on ``event`` (nothing happens if it was not added)."""
        callbacks = self._callbacks.get(event, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def _fire(self, event: str) -> None:
        for callback in list(self._callbacks[event]):
            try:
                callback()  # plain functions, as jupyter_client's restarter calls them
            except Exception:
                self.log.exception("kernelkit: the server's %r callback %r failed", event, callback)

    def _kernel_died(self, error: KernelError) -> None:
        self.reason = str(error)
        self.log.warning("Kernel %s died: %s", self.kernel_id, error)
        if self.autorestart:
            self.execution_state = "restarting"
            self._fire("restart")

    def _kernel_restarted(self, error: KernelError) -> None:
        if self._kk is not None:
            self._take_connection(self._kk.connection_info)
        self.execution_state = "starting"
        self.log.info("Kernel %s restarted by kernelkit", self.kernel_id)

    def _kernel_dead(self, error: KernelError) -> None:
        self.reason = str(error)
        self.execution_state = "dead"
        self.log.error("Kernel %s is dead: %s", self.kernel_id, error)
        self._fire("dead")
