"""``kernelkit start``: start a kernel for other clients and supervise it until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from kernelkit._errors import (
    KernelDied,
    KernelError,
    KernelSpecError,
    KernelTimeout,
    ProvisioningError,
)
from kernelkit.cli._app import app
from kernelkit.cli._run import (
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
    report_error,
    signal_handlers,
)
from kernelkit.manager import AsyncKernelManager

__all__ = ["Supervisor"]


class Supervisor:
    """One ``kernelkit start``: start, announce, report deaths and restarts, stop."""

    def __init__(self, kernel_name: str, *, startup_timeout: float, restart_limit: int) -> None:
        self.console = Console(stderr=True)
        self.startup_timeout = startup_timeout
        self.stop = asyncio.Event()
        self.status = EXIT_OK
        self.km = AsyncKernelManager(
            kernel_name,
            restart_limit=restart_limit,
            on_died=self._died,
            on_restarted=self._restarted,
            on_dead=self._dead,
        )

    def _say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style), highlight=False, soft_wrap=True)

    def _died(self, error: KernelError) -> None:
        report_error(self.console, "the kernel died", error)
        if self.km.autorestart:
            self._say("kernelkit: restarting it")

    def _restarted(self, error: KernelError) -> None:
        where = self.km.connection_file
        self._say(f"kernelkit: kernel restarted (connection file: {where})", "green")

    def _dead(self, error: KernelError) -> None:
        report_error(self.console, "the kernel stays dead", error)
        self.status = EXIT_KERNEL_DIED
        self.stop.set()

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self.stop.set, signal.SIGTERM: self.stop.set}
        with signal_handlers(loop, handlers):
            try:
                if not await self._start():
                    return EXIT_KERNEL_FAILED
                await self.stop.wait()
            finally:
                if self.km.has_kernel:
                    self._say("kernelkit: shutting the kernel down")
                await self.km.shutdown_kernel()
        return self.status

    async def _start(self) -> bool:
        name = self.km.kernel_name
        try:
            await self.km.start_kernel()
        except (KernelSpecError, ProvisioningError) as exc:
            report_error(self.console, f"cannot start kernel {name!r}", exc)
            return False
        # Announce the kernel only once it answers, so the file is usable when printed.
        async with self.km.client() as kc:
            try:
                await kc.wait_for_ready(timeout=self.startup_timeout)
            except (KernelDied, KernelTimeout) as exc:
                report_error(self.console, f"kernel {name!r} did not start", exc)
                return False
        path = self.km.connection_file
        sys.stdout.write(f"{path}\n")
        sys.stdout.flush()
        self._say(
            f"kernelkit: kernel {name!r} ({self.km.kernel_id}) is running.\n"
            f"  Connect with: jupyter console --existing {path}\n"
            "  Press Ctrl-C to shut it down."
        )
        return True


@app.command("start")
def start(
    kernel: Annotated[
        str, typer.Option("--kernel", "-k", help="The kernelspec to start.")
    ] = "python3",
    startup_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the kernel to be ready.")
    ] = 60.0,
    restart_limit: Annotated[
        int, typer.Option(help="Restarts in a row (each dying within 10 s) before giving up.")
    ] = 5,
) -> None:
    """Start a kernel, print its connection file, and keep it running until Ctrl-C.

    A kernel that dies is reported (exit code, last output) and restarted on the same
    connection file. Exit status: 0 after Ctrl-C, 3 when the kernel could not start, 4
    when it died and could not be restarted.
    """
    logging.getLogger("kernelkit").addHandler(logging.NullHandler())
    logging.getLogger("kernelkit").propagate = False
    supervisor = Supervisor(
        kernel.removeprefix("spec/"), startup_timeout=startup_timeout, restart_limit=restart_limit
    )
    try:
        status = asyncio.run(supervisor.main())
    except KernelError as exc:
        report_error(supervisor.console, f"kernel {kernel!r}", exc)
        status = EXIT_KERNEL_FAILED
    raise typer.Exit(status)
