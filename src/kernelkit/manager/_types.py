"""What a manager's callers see of it besides the manager: its states, its restart
events and callbacks, what a client must offer to be kept informed, and defaults."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Literal, Protocol

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelError, ManagerError

__all__ = [
    "INTERRUPT_REPLY_TIMEOUT",
    "DEFAULT_SHUTDOWN_WAIT_TIME",
    "DEFAULT_STABLE_START_TIME",
    "EVENTS",
    "KernelState",
    "KernelWatcher",
    "Notices",
    "RestartCallback",
    "RestartEvent",
    "same_endpoints",
]

#: Called with the error describing what happened (see :class:`AsyncKernelManager`).
RestartCallback = Callable[[KernelError], object]
#: ``"died"``: the process exited unexpectedly (called at once, before any restart);
#: ``"restart"``: it was restarted after such a death; ``"dead"``: it stays dead.
RestartEvent = Literal["died", "restart", "dead"]
EVENTS: tuple[RestartEvent, ...] = ("died", "restart", "dead")
#: ``new`` (never started), ``running``, ``restarting`` (stopping and starting again),
#: ``dead`` (died and stays dead: see ``last_error``), ``stopped`` (shut down on request).
KernelState = Literal["new", "running", "restarting", "dead", "stopped"]

#: How long the default stop sequence may take: half waiting for the kernel to exit after
#: shutdown_request, half after SIGTERM, then SIGKILL (jupyter_client's default too).
DEFAULT_SHUTDOWN_WAIT_TIME = 5.0
#: A kernel that ran this long before dying restarts with a fresh restart budget.
DEFAULT_STABLE_START_TIME = 10.0
#: How long an interrupt_request (message mode) may take to be answered.
INTERRUPT_REPLY_TIMEOUT = 10.0


class KernelWatcher(Protocol):
    """What a manager tells about its kernel: both kernelkit clients implement it."""

    @property
    def closed(self) -> bool: ...

    def notify_dead(self, error: KernelError) -> None: ...

    def notify_restarted(self, info: ConnectionInfo | None = None) -> None: ...


def same_endpoints(a: ConnectionInfo, b: ConnectionInfo) -> bool:
    """True when a client connected to ``a`` reaches (and can talk to) ``b``."""
    return (
        a.ip == b.ip
        and a.transport == b.transport
        and a.key == b.key
        and a.signature_scheme == b.signature_scheme
        and all(a.port(c) == b.port(c) for c in ("shell", "iopub", "stdin", "control", "hb"))
    )


log = logging.getLogger("kernelkit.manager")


class Notices:
    """Who hears about one kernel's deaths and restarts: restart callbacks by event, and
    watchers (clients, held weakly). A failing callback or watcher is logged; the others
    still hear. ``label`` names the kernel in those logs."""

    def __init__(self, label: Callable[[], str]) -> None:
        self._label = label
        self._callbacks: dict[RestartEvent, list[RestartCallback]] = {e: [] for e in EVENTS}
        self._watchers: weakref.WeakSet[KernelWatcher] = weakref.WeakSet()

    def add_callback(self, callback: RestartCallback, event: RestartEvent) -> None:
        """Raises ManagerError for an unknown ``event``."""
        if event not in EVENTS:
            raise ManagerError(f"unknown restart event {event!r}; use one of {EVENTS}")
        self._callbacks[event].append(callback)

    def remove_callback(self, callback: RestartCallback, event: RestartEvent) -> None:
        """Raises ManagerError for an unknown ``event``."""
        if event not in EVENTS:
            raise ManagerError(f"unknown restart event {event!r}; use one of {EVENTS}")
        callbacks = self._callbacks[event]
        if callback in callbacks:
            callbacks.remove(callback)

    def fire(self, event: RestartEvent, error: KernelError) -> None:
        for callback in list(self._callbacks[event]):
            try:
                callback(error)
            except Exception:
                log.exception("kernel %s: a %r callback failed", self._label(), event)

    def add_watcher(self, watcher: KernelWatcher) -> None:
        self._watchers.add(watcher)

    def remove_watcher(self, watcher: KernelWatcher) -> None:
        self._watchers.discard(watcher)

    def forget_watchers(self) -> None:
        self._watchers = weakref.WeakSet()

    def notify_dead(self, error: KernelError) -> None:
        for watcher in list(self._watchers):
            if watcher.closed:
                continue
            try:
                watcher.notify_dead(error)
            except Exception:  # a watcher of the caller's own: the others still hear
                log.exception("kernel %s: a client's notify_dead failed", self._label())

    def notify_restarted(self, info: ConnectionInfo | None) -> None:
        for watcher in list(self._watchers):
            if watcher.closed:
                continue
            try:
                watcher.notify_restarted(info)
            except Exception:
                log.exception("kernel %s: a client's notify_restarted failed", self._label())
