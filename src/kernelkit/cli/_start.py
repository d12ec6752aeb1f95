"""``kernelkit start``: start a kernel for other clients and supervise it until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from kernelkit._errors import (
    KernelDied,
    KernelError,
    KernelTimeout,
)
from kernelkit.cli._progress import manager_tail, progress
from kernelkit.cli._running import forget_kernel
from kernelkit.cli._servers import remote_address
from kernelkit.cli._starting import (
    START_ERRORS,
    find_kernel,
    quiet_library_logs,
    record_started,
    report_error,
    signal_handlers,
)
from kernelkit.cli._status import EXIT_KERNEL_DIED, EXIT_KERNEL_FAILED, EXIT_OK
from kernelkit.manager import AsyncKernelManager

__all__ = ["Supervisor", "start_command"]


class Supervisor:
    """One ``kernelkit start``: start, announce, report deaths and restarts, stop."""

    def __init__(self, kernel: str, *, startup_timeout: float, restart_limit: int) -> None:
        self.console = Console(stderr=True)
        self.kernel = kernel
        self.startup_timeout = startup_timeout
        self.restart_limit = restart_limit
        self.stop = asyncio.Event()
        self.status = EXIT_OK
        self._km: AsyncKernelManager | None = None
        self._record: Path | None = None

    @property
    def km(self) -> AsyncKernelManager:
        """The kernel's manager (once the kernel is found)."""
        assert self._km is not None  # callbacks fire only after the start
        return self._km

    def _say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style), highlight=False, soft_wrap=True)

    def _died(self, error: KernelError) -> None:
        report_error(self.console, "the kernel died", error)
        if self.km.autorestart:
            self._say("kernelkit: restarting it")

    def _restarted(self, error: KernelError) -> None:
        where = self.km.connection_file
        self._record = record_started(self.km, "start")  # its new process
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
                if self._km is not None:
                    if self._km.has_kernel:
                        self._say("kernelkit: shutting the kernel down")
                    await self._km.shutdown_kernel()
                forget_kernel(self._record)
        return self.status

    async def _start_ready(self) -> BaseException | None:
        """Start the kernel and wait until it answers; the error, or None when ready."""
        try:
            # Its provider's plan: the provisioner it names and the complete environment
            # (activated, if the kernel has one; what activation removed stays removed).
            # Restarts reuse it.
            await self.km.start_kernel()
        except START_ERRORS as exc:
            return exc
        # Announce the kernel only once it answers, so the file is usable when printed.
        async with self.km.client() as kc:
            try:
                await kc.wait_for_ready(timeout=self.startup_timeout)
            except (KernelDied, KernelTimeout) as exc:
                return exc
        return None

    async def _start(self) -> bool:
        found = await find_kernel(self.console, self.kernel)
        if found is None:
            return False
        finder, kernel_type = found
        name = kernel_type.id
        self._km = AsyncKernelManager(
            kernel_type=kernel_type,
            finder=finder,
            restart_limit=self.restart_limit,
            on_died=self._died,
            on_restarted=self._restarted,
            on_dead=self._dead,
        )
        async with progress(self.console, f"starting kernel {name}", manager_tail(self.km)):
            failed = await self._start_ready()
        if failed is not None:
            report_error(self.console, f"kernel {name!r} did not start", failed)
            return False
        path = self.km.connection_file
        self._record = record_started(self.km, "start")
        address = remote_address(self.km.provisioner) if path is None else None
        sys.stdout.write(f"{address or path}\n")
        sys.stdout.flush()
        if address is not None:  # on a server: no connection file, an id to attach to
            self._say(
                f"kernelkit: kernel {name!r} is running as {address}.\n"
                f"  Connect with: kernelkit run --kernel {address} -c CODE\n"
                "  Press Ctrl-C to shut it down."
            )
            return True
        self._say(
            f"kernelkit: kernel {name!r} ({self.km.kernel_id}) is running.\n"
            f"  Connect with: kernelkit console --existing {self.km.kernel_id}\n"
            f"            or: jupyter console --existing {path}\n"
            "  Press Ctrl-C to shut it down."
        )
        return True


def start_command(*, kernel: str, startup_timeout: float, restart_limit: int) -> int:
    """``kernelkit start``: returns the exit status."""
    quiet_library_logs()
    supervisor = Supervisor(kernel, startup_timeout=startup_timeout, restart_limit=restart_limit)
    try:
        return asyncio.run(supervisor.main())
    except KernelError as exc:
        report_error(supervisor.console, f"kernel {kernel!r}", exc)
        return EXIT_KERNEL_FAILED
