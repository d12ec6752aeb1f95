"""Watching a kernel's process for a death nobody asked for, and relaunching a kernel
that died, within the limit of quick deaths in a row."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kernelkit._errors import KernelDied, KernelError, ManagerError
from kernelkit.provisioning import KernelProvisionerBase

__all__ = ["ExitWatch", "relaunch_within_limit"]

log = logging.getLogger("kernelkit.manager")


async def relaunch_within_limit(
    launch: Callable[[], Awaitable[object]],
    *,
    error: KernelError,
    quick_deaths: int,
    restart_limit: int,
    stable: float,
    label: str,
) -> tuple[KernelError | None, int]:
    """Call ``launch`` until it succeeds, each attempt one more quick death, giving up past
    ``restart_limit`` in a row. Returns (None, deaths) once relaunched, or (why it stays
    dead, deaths)."""
    while True:
        quick_deaths += 1
        if quick_deaths > restart_limit:
            if isinstance(error, KernelDied):
                error = KernelDied(
                    f"the kernel died {quick_deaths} times in a row within {stable:g} s of "
                    "starting; not restarting it again",
                    kernel_name=error.kernel_name,
                    exit_code=error.exit_code,
                    output_tail=error.output_tail,
                )
            log.error("%s", error)
            return error, quick_deaths
        log.info(
            "kernel %s: restarting (%d of at most %d in a row)", label, quick_deaths, restart_limit
        )
        try:
            await launch()
        except KernelError as exc:
            # A failed relaunch is one more quick death.
            log.warning("kernel %s: restart failed: %s", label, exc)
            error = exc
            continue
        return None, quick_deaths


class ExitWatch:
    """The task that waits for the kernel's exit (the provisioner's ``wait()``, an event)
    and hands an exit nobody asked for to ``on_exit``; a failure of that is reported to
    ``on_failure`` instead of being lost in a task nobody awaits."""

    __slots__ = ("_generation", "_label", "_on_exit", "_on_failure", "_task", "started_at")

    def __init__(
        self,
        label: Callable[[], str],
        on_exit: Callable[[KernelProvisionerBase, int | None], Awaitable[None]],
        on_failure: Callable[[KernelError], None],
    ) -> None:
        self._label = label
        self._on_exit = on_exit
        self._on_failure = on_failure
        self._task: asyncio.Task[None] | None = None
        self._generation = 0
        #: When the watched kernel started (the event loop's clock).
        self.started_at = 0.0

    def watch(self, p: KernelProvisionerBase) -> None:
        loop = asyncio.get_running_loop()
        self._generation += 1
        self.started_at = loop.time()
        self._task = loop.create_task(
            self._run(p, self._generation), name=f"kernelkit-supervise-{self._label()}"
        )

    async def _run(self, p: KernelProvisionerBase, generation: int) -> None:
        status = await p.wait()
        if generation != self._generation or self._task is not asyncio.current_task():
            return
        try:
            await self._on_exit(p, status)
        except Exception as exc:
            log.exception("kernel %s: supervising failed", self._label())
            self._on_failure(
                exc
                if isinstance(exc, KernelError)
                else ManagerError(
                    f"kernel {self._label()}: supervising failed: {type(exc).__name__}: {exc}"
                )
            )

    async def stop(self) -> None:
        """Stop watching: an exit from now on is expected."""
        task, self._task = self._task, None
        self._generation += 1
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        # asyncio.wait: never raises the task's own CancelledError into us, but does
        # propagate a cancellation of the caller.
        await asyncio.wait({task})
