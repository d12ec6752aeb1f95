"""The kernel side of ``kernelkit console``: find and start its kernel, or attach to a
running one, and the calls on it that need the manager or the records.

The console imports this module in a thread while its prompt already shows: discovery,
the manager, the client and rich take most of the console's start-up, and the person
can type meanwhile. What it says about a failed start is kept (not printed over the
prompt) and shown once the prompt is gone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from kernelkit._connection import read_connection_file
from kernelkit._errors import ConnectionFileError, KernelDied, KernelError, KernelTimeout
from kernelkit.cli._console_output import ConsoleOutput
from kernelkit.cli._ps import interrupt_running, ping
from kernelkit.cli._running import RunningKernel, UnknownKernel, forget_kernel, resolve_kernel
from kernelkit.cli._starting import (
    START_ERRORS,
    find_kernel,
    quiet_library_logs,
    record_started,
    report_error,
)
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager

__all__ = [
    "Connected",
    "ConsoleOutput",
    "attach",
    "forget_kernel",
    "interrupt",
    "quiet_library_logs",
    "record_started",
    "report_error",
    "start_owned",
    "stderr_console",
]


@dataclass
class Connected:
    """The outcome of starting or attaching: a ready client, or why there is none.

    ``km`` is set as soon as a kernel process was started (so that it is shut down even
    when it never became ready); ``failure`` is the text to print when ``kc`` is None."""

    kc: AsyncKernelClient | None = None
    km: AsyncKernelManager | None = None
    running: RunningKernel | None = None
    record: Path | None = None
    failure: str = ""


def stderr_console() -> Console:
    """The console's messages to the person (standard error)."""
    return Console(stderr=True)


def _kept() -> Console:
    """A console that keeps what is printed (shown once the prompt is gone), styled as
    standard error would be."""
    err = stderr_console()
    return Console(
        file=io.StringIO(), force_terminal=err.is_terminal, width=err.width, no_color=err.no_color
    )


def _text(console: Console) -> str:
    file = console.file
    return file.getvalue() if isinstance(file, io.StringIO) else ""


async def start_owned(
    kernel: str,
    *,
    startup_timeout: float,
    on_died: Callable[[KernelError], None],
    on_manager: Callable[[AsyncKernelManager], None],
) -> Connected:
    """Find ``kernel``, start it and wait until it answers. ``on_manager`` is called
    with the manager before its kernel starts (the console shuts it down on leaving)."""
    out = _kept()
    found = await find_kernel(out, kernel)
    if found is None:
        return Connected(failure=_text(out))
    finder, kernel_type = found
    name = kernel_type.id
    km = AsyncKernelManager(
        kernel_type=kernel_type, finder=finder, autorestart=False, on_died=on_died
    )
    on_manager(km)
    try:
        await km.start_kernel()
    except START_ERRORS as exc:
        report_error(out, f"cannot start kernel {name!r}", exc)
        return Connected(km=km, failure=_text(out))
    record = record_started(km, "console")
    kc = km.client()
    await kc.start()
    try:
        await kc.wait_for_ready(timeout=startup_timeout)
    except (KernelDied, KernelTimeout) as exc:
        await kc.aclose()
        report_error(out, f"cannot start kernel {name!r}", exc)
        return Connected(km=km, record=record, failure=_text(out))
    return Connected(kc=kc, km=km, record=record)


async def attach(ident: str) -> Connected:
    """Connect to the running kernel ``ident`` names (an id, a unique start of one, or a
    connection file) once it answers its heartbeat."""
    out = _kept()
    try:
        running = resolve_kernel(ident)
    except UnknownKernel as exc:
        report_error(out, "no such kernel", exc)
        return Connected(failure=_text(out))
    name = running.kernel_id
    if running.process_gone:
        report_error(
            out,
            f"kernel {name} is dead",
            "its process has exited (`kernelkit ps --clean` removes its files)",
        )
        return Connected(failure=_text(out))
    try:
        info = read_connection_file(running.connection_file)
    except ConnectionFileError as exc:
        report_error(out, f"cannot use kernel {name}", exc)
        return Connected(failure=_text(out))
    if not await ping(info, 3.0):
        report_error(
            out,
            f"kernel {name} is not answering",
            f"nothing answered at the heartbeat port of {running.connection_file}: the "
            "kernel is dead or unreachable (`kernelkit ps` shows its state)",
        )
        return Connected(failure=_text(out))
    kc = AsyncKernelClient.from_connection_info(info)
    await kc.start()
    await kc.wait_for_ready(timeout=None)  # a busy kernel answers when done
    return Connected(kc=kc, running=running)


async def interrupt(km: AsyncKernelManager | None, running: RunningKernel | None) -> None:
    """Interrupt the console's kernel (its own, or the running one it attached to)."""
    try:
        if km is not None:
            await km.interrupt_kernel()
        elif running is not None:
            await interrupt_running(running)
    except (KernelError, OSError) as exc:
        report_error(stderr_console(), "could not interrupt the kernel", exc)
