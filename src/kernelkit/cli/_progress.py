"""The progress line of a slow start: after half a second, a spinner on stderr with the
time taken and the kernel's last output line, gone once the kernel is ready. Only on a
terminal (a pipe or a file gets nothing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from rich.console import Console

from kernelkit.manager import AsyncKernelManager

__all__ = ["SHOW_AFTER", "Progress", "manager_tail", "progress"]

#: Seconds a start takes before the progress line appears.
SHOW_AFTER = 0.5
_REFRESH = 0.1  # the line's refresh period (display only)


async def _show(console: Console, what: str, tail: Callable[[], str | None]) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(SHOW_AFTER)
    started = loop.time() - SHOW_AFTER
    with console.status(what, spinner="dots") as status:
        while True:  # until cancelled, when the start is over
            last = tail()
            elapsed = loop.time() - started
            line = f"{what} ({elapsed:.1f} s)"
            if last:
                line += f"  {last.strip()[-70:]}"
            status.update(line)
            await asyncio.sleep(_REFRESH)


class Progress:
    """:func:`progress` as an object, for starts whose steps do not nest in one block:
    :meth:`start`, then :meth:`stop` (safe to call twice, or without a start)."""

    def __init__(
        self, console: Console, what: str, tail: Callable[[], str | None] = lambda: None
    ) -> None:
        self._console = console
        self._what = what
        self._tail = tail
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._console.is_terminal and self._task is None:
            coro = _show(self._console, self._what, self._tail)
            self._task = asyncio.get_running_loop().create_task(coro)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def progress(
    console: Console, what: str, tail: Callable[[], str | None] = lambda: None
) -> AsyncIterator[None]:
    """Show ``what`` with a spinner while the block runs longer than :data:`SHOW_AFTER`;
    ``tail`` gives the kernel's last output line (or None). Nothing unless ``console``
    is a terminal."""
    shown = Progress(console, what, tail)
    shown.start()
    try:
        yield
    finally:
        await shown.stop()


def manager_tail(km: AsyncKernelManager) -> Callable[[], str | None]:
    """The last output line of a kernel manager's kernel (for :func:`progress`)."""

    def tail() -> str | None:
        lines = km.output_tail(1)
        return str(lines[-1]) if lines else None

    return tail
