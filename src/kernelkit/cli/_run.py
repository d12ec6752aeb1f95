"""``kernelkit run``: run code in a new kernel, streaming its output as it comes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console

from kernelkit._errors import (
    HeartbeatTimeout,
    KernelDied,
    KernelError,
    KernelTimeout,
)
from kernelkit.cli._servers import attached_client
from kernelkit.cli._starting import (
    START_ERRORS,
    find_kernel,
    quiet_library_logs,
    report_error,
    signal_handlers,
)
from kernelkit.cli._status import (
    EXIT_CODE_RAISED,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
)
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.protocol import Message

__all__ = ["OutputPrinter", "run_command"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


class OutputPrinter:
    """The output hook of ``kernelkit run``: each IOPub message printed as it arrives.

    stdout streams and ``text/plain`` of results and displays go to stdout; stderr
    streams and tracebacks to stderr (colour codes removed unless it is a terminal).
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._plain_err = not _is_terminal(err)
        #: True once an ``error`` message (a traceback) was printed.
        self.error_shown = False

    def __call__(self, msg: Message) -> None:
        msg_type = msg.header.msg_type
        content = msg.content
        if msg_type == "stream":
            stream = self._err if content.get("name") == "stderr" else self._out
            self._write(stream, str(content.get("text", "")))
        elif msg_type in ("execute_result", "display_data", "update_display_data"):
            data = content.get("data")
            if isinstance(data, Mapping) and "text/plain" in data:
                self._write(self._out, f"{data['text/plain']}\n")
        elif msg_type == "error":
            self.show_error(content)

    def show_error(self, content: Mapping[str, object]) -> None:
        """Print the traceback of an ``error`` message or an error ``execute_reply``."""
        self.error_shown = True
        self._write(self._err, _traceback_text(content, plain=self._plain_err))

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text)
        stream.flush()


def _traceback_text(content: Mapping[str, object], *, plain: bool) -> str:
    lines = content.get("traceback")
    if not isinstance(lines, list) or not lines:
        lines = [f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"]
    text = "\n".join(str(line) for line in lines) + "\n"
    return _ANSI.sub("", text) if plain else text


def _read_code(code: str | None, file: Path | None) -> str:
    if (code is None) == (file is None):
        raise typer.BadParameter("give either -c CODE or a FILE (not both)")
    if code is not None:
        return code
    assert file is not None
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{file} is not UTF-8 text: {exc}") from exc


class _Run:
    """One ``kernelkit run``: start, execute, stream, stop; Ctrl-C handling."""

    def __init__(
        self,
        kernel: str,
        code: str,
        *,
        startup_timeout: float,
        sandbox: Mapping[str, Any] | None = None,
    ) -> None:
        self.kernel = kernel
        self.sandbox = sandbox
        self.code = code
        self.startup_timeout = startup_timeout
        self.km: AsyncKernelManager | None = None
        self.attached: AsyncKernelClient | None = None
        self.console = Console(stderr=True)
        self.printer = OutputPrinter(sys.stdout, sys.stderr)
        self.interrupts = 0
        self.executing = False
        self.stop_now = False
        self.terminated = False
        self.work: asyncio.Task[int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_sigint(self) -> None:
        self.interrupts += 1
        if self.executing and self.interrupts == 1:
            self.console.print(
                "kernelkit: interrupting the kernel (Ctrl-C again to stop it)", highlight=False
            )
            task = asyncio.get_running_loop().create_task(self._interrupt())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self.console.print("kernelkit: stopping the kernel", highlight=False)
        self._cancel(now=True)

    def on_sigterm(self) -> None:
        self.terminated = True
        self._cancel(now=True)

    def _cancel(self, *, now: bool) -> None:
        self.stop_now = self.stop_now or now
        if self.work is not None and not self.work.done():
            self.work.cancel()

    async def _interrupt(self) -> None:
        try:
            if self.km is None:  # attached to a running remote kernel: ask the kernel
                assert self.attached is not None  # set before the code is executed
                await self.attached.interrupt(timeout=10)
                return
            await self.km.interrupt_kernel()
        except KernelError as exc:
            report_error(self.console, "could not interrupt the kernel", exc)

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self.on_sigint, signal.SIGTERM: self.on_sigterm}
        with signal_handlers(loop, handlers):
            self.work = loop.create_task(self._start_and_execute())
            try:
                return await self.work
            except asyncio.CancelledError:
                if not self.work.cancelled():
                    raise  # we are cancelled ourselves
                return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED
            finally:
                # Always: whatever happened, the kernel goes.
                if self.km is not None:
                    await self.km.shutdown_kernel(now=self.stop_now)

    async def _start_and_execute(self) -> int:
        self.attached = attached_client(self.kernel)
        if self.attached is not None:  # a running remote kernel: a client only
            async with self.attached as kc:
                return await self._execute(kc)
        found = await find_kernel(self.console, self.kernel)
        if found is None:
            return EXIT_KERNEL_FAILED
        finder, kernel_type = found
        name = kernel_type.id
        self.km = km = AsyncKernelManager(
            kernel_type=kernel_type, finder=finder, autorestart=False, sandbox=self.sandbox
        )
        try:
            # Its provider's plan: the provisioner it names and the complete environment
            # (activated, if the kernel has one; what activation removed stays removed).
            await km.start_kernel()
        except START_ERRORS as exc:
            report_error(self.console, f"cannot start kernel {name!r}", exc)
            return EXIT_KERNEL_FAILED
        async with km.client() as kc:
            try:
                await kc.wait_for_ready(timeout=self.startup_timeout)
            except KernelDied as exc:
                report_error(self.console, f"kernel {name!r} died while starting", exc)
                return EXIT_KERNEL_FAILED
            except KernelTimeout as exc:
                tail = km.output_tail()
                detail = ("\n  last output:\n    " + "\n    ".join(tail)) if tail else ""
                report_error(self.console, f"kernel {name!r} did not start", f"{exc}{detail}")
                return EXIT_KERNEL_FAILED
            return await self._execute(kc)

    async def _execute(self, kc: AsyncKernelClient) -> int:
        self.executing = True
        try:
            reply = await kc.execute_interactive(
                self.code, output_hook=self.printer, stdin_hook=None
            )
        except KernelDied as exc:
            report_error(self.console, "the kernel died", exc)
            return EXIT_KERNEL_DIED
        except HeartbeatTimeout as exc:
            report_error(self.console, "the kernel stopped answering", exc)
            return EXIT_KERNEL_DIED
        finally:
            self.executing = False
        content = reply.content
        if content.get("status") == "ok":
            return EXIT_OK
        if not self.printer.error_shown:
            self.printer.show_error(content)  # some kernels put the error only in the reply
        return EXIT_INTERRUPTED if self.interrupts else EXIT_CODE_RAISED


def run_command(
    *,
    kernel: str,
    code: str | None,
    file: Path | None,
    startup_timeout: float,
    sandbox: Mapping[str, Any] | None = None,
) -> int:
    """``kernelkit run``: returns the exit status.

    Raises:
        typer.BadParameter: neither or both of ``code`` and ``file``, or an unreadable file.
    """
    source = _read_code(code, file)
    quiet_library_logs()
    runner = _Run(kernel, source, startup_timeout=startup_timeout, sandbox=sandbox)
    try:
        return asyncio.run(runner.main())
    except KernelError as exc:  # e.g. the kernel could not be stopped
        report_error(runner.console, f"kernel {kernel!r}", exc)
        return EXIT_KERNEL_FAILED
