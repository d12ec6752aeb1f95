"""``kernelkit run``: run code in a new kernel (or a running one), streaming its output."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from kernelkit._connection import read_connection_file
from kernelkit._errors import (
    ConnectionFileError,
    HeartbeatTimeout,
    KernelDied,
    KernelError,
    KernelTimeout,
)
from kernelkit.cli._earlyrun import claim_early
from kernelkit.cli._output import JsonLines, OutputPrinter, OutputSaver, is_terminal
from kernelkit.cli._progress import Progress, manager_tail
from kernelkit.cli._ps import interrupt_running, ping
from kernelkit.cli._running import RunningKernel, UnknownKernel, forget_kernel, resolve_kernel
from kernelkit.cli._servers import attached_client
from kernelkit.cli._starting import (
    START_ERRORS,
    find_kernel,
    quiet_library_logs,
    record_started,
    report_error,
    signal_handlers,
)
from kernelkit.cli._status import (
    EXIT_CODE_RAISED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TIMEOUT,
)
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny._kernel import AdoptingFactory
from kernelkit.protocol import Message

__all__ = ["RunOptions", "parse_env", "read_code", "run_command"]

#: Seconds after an interrupt before an idle kernel that sent no reply is given up on
#: (some kernels go idle after an interrupt without answering the request), and before
#: ``--timeout`` stops a kernel that ignored its interrupt.
INTERRUPT_GRACE = 3.0


#: Seconds a running kernel (``--existing``) has to answer a heartbeat ping.
EXISTING_PING_TIMEOUT = 3.0


@dataclass(frozen=True)
class RunOptions:
    """What ``kernelkit run`` was asked for, besides the code."""

    kernel: str = "python3"
    startup_timeout: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    timeout: float | None = None
    save_outputs: Path | None = None
    as_json: bool = False
    #: A running kernel to use (id, id prefix or connection file) instead of a new one.
    existing: str | None = None
    #: The sandbox provisioner's config (``kernelkit run --sandbox``), or None.
    sandbox: Mapping[str, Any] | None = None


def read_code(code: str | None, file: Path | None) -> str:
    """The code to run, from ``-c`` or a file (``-`` is standard input).

    Raises:
        typer.BadParameter: neither or both given, or the file is unreadable.
    """
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


_read_code = read_code  # the name the older tests use


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``--env K=V`` options as a mapping (a later K wins).

    Raises:
        typer.BadParameter: an item without ``=`` or with an empty name.
    """
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or "\0" in pair:
            raise typer.BadParameter(
                f"{pair!r} is not NAME=VALUE (e.g. --env DEBUG=1)", param_hint="--env"
            )
        env[name] = value
    return env


def _check_cwd(cwd: Path | None) -> Path | None:
    if cwd is None:
        return None
    if not cwd.is_dir():
        raise typer.BadParameter(f"{cwd} is not a directory", param_hint="--cwd")
    return cwd.resolve()


async def _piped_input(request: Message, *, echo: bool = True) -> str:
    """Answer ``input()`` from a standard input that is not a terminal: one line, or
    end-of-file (``\\x04``, which ipykernel raises as EOFError) when there is none. The
    prompt is echoed to stdout (as Python does) when ``echo``."""
    prompt = str(request.content.get("prompt", ""))
    if prompt and echo:
        sys.stdout.write(prompt)
        sys.stdout.flush()
    stdin = sys.stdin
    line = await asyncio.to_thread(stdin.readline) if stdin is not None else ""
    if not line:
        return "\x04"
    return line.removesuffix("\n").removesuffix("\r")


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and is_terminal(sys.stdin)


class _Run:
    """One ``kernelkit run``: start, execute, stream, stop; Ctrl-C and time limits."""

    def __init__(self, code: str, options: RunOptions) -> None:
        self.code = code
        self.options = options
        self.km: AsyncKernelManager | None = None
        self.attached: AsyncKernelClient | None = None
        self.record: Path | None = None
        self.running: RunningKernel | None = None
        self.kc: AsyncKernelClient | None = None
        self.console = Console(stderr=True)
        saver = OutputSaver(options.save_outputs) if options.save_outputs else None
        self.saver = saver
        self.printer = OutputPrinter(sys.stdout, sys.stderr, saver=saver)
        self.json = JsonLines(sys.stdout, saver=saver) if options.as_json else None
        self.interrupts = 0
        self.executing = False
        self.stop_now = False
        self.terminated = False
        self.timed_out = False
        self.gave_up = False
        self.work: asyncio.Task[int] | None = None
        self.execution: asyncio.Task[Message] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unwatch: Callable[[], None] | None = None

    def _say(self, text: str) -> None:
        self.console.print(f"kernelkit: {text}", highlight=False, markup=False, soft_wrap=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_sigint(self) -> None:
        self.interrupts += 1
        if self.executing and self.interrupts == 1:
            self._say("interrupting the kernel (Ctrl-C again to stop it)")
            self._spawn(self._interrupt())
            return
        self._say("leaving the kernel running" if self.options.existing else "stopping the kernel")
        self._cancel(now=True)

    def on_sigterm(self) -> None:
        self.terminated = True
        self._cancel(now=True)

    def on_timeout(self) -> None:
        if not self.executing or self.interrupts:
            return
        self.timed_out = True
        self._say(f"the code ran past --timeout {self.options.timeout:g} s; interrupting it")
        self._spawn(self._interrupt())

    def _cancel(self, *, now: bool) -> None:
        self.stop_now = self.stop_now or now
        if self.work is not None and not self.work.done():
            self.work.cancel()

    async def _interrupt(self) -> None:
        try:
            if self.running is not None:
                await interrupt_running(self.running)
            elif self.km is None:  # attached to a running remote kernel: ask the kernel
                assert self.attached is not None  # set before the code is executed
                await self.attached.interrupt(timeout=10)
            else:
                await self.km.interrupt_kernel()
        except (KernelError, OSError) as exc:
            report_error(self.console, "could not interrupt the kernel", exc)
        await asyncio.sleep(INTERRUPT_GRACE)
        self._after_grace()

    def _after_grace(self) -> None:
        """A few seconds after an interrupt: stop waiting for a reply that will not come."""
        execution, kc = self.execution, self.kc
        if execution is None or execution.done() or kc is None:
            return
        # Not known to be busy (idle, or no status seen since we connected): the reply
        # is not coming.
        if kc.execution_state != "busy":
            self._give_up(
                "the kernel is idle but sent no reply to the interrupted code; not waiting for it"
            )
        elif self.timed_out:
            self._say("the kernel did not stop after the interrupt; stopping it")
            self.stop_now = True
            self._give_up(None)
        elif self._unwatch is None:
            # Still busy: the first idle status it sends ends the wait.
            def on_iopub(msg: Message) -> None:
                state = msg.content.get("execution_state")
                if msg.header.msg_type == "status" and state == "idle":
                    asyncio.get_running_loop().call_soon(self._after_grace)

            self._unwatch = kc.add_iopub_handler(on_iopub)

    def _give_up(self, why: str | None) -> None:
        if why:
            self._say(why)
        self.gave_up = True
        if self._unwatch is not None:
            self._unwatch()
        if self.execution is not None:
            self.execution.cancel()

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self.on_sigint, signal.SIGTERM: self.on_sigterm}
        with signal_handlers(loop, handlers):
            self.work = loop.create_task(
                self._attach_and_execute() if self.options.existing else self._start_and_execute()
            )
            try:
                return await self.work
            except asyncio.CancelledError:
                if not self.work.cancelled():
                    raise  # we are cancelled ourselves
                return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED
            finally:
                self.printer.finish()
                # Always: whatever happened, the kernel goes.
                if self.km is not None:
                    await self.km.shutdown_kernel(now=self.stop_now)
                forget_kernel(self.record)

    async def _attach_and_execute(self) -> int:
        """``--existing``: run the code in a running kernel, and leave it running."""
        assert self.options.existing is not None
        try:
            self.running = running = resolve_kernel(self.options.existing)
        except UnknownKernel as exc:
            report_error(self.console, "no such kernel", exc)
            return EXIT_KERNEL_FAILED
        name = running.kernel_id
        if running.process_gone:
            report_error(
                self.console,
                f"kernel {name} is dead",
                "its process has exited (`kernelkit ps --clean` removes its files)",
            )
            return EXIT_KERNEL_FAILED
        try:
            info = read_connection_file(running.connection_file)
        except ConnectionFileError as exc:
            report_error(self.console, f"cannot use kernel {name}", exc)
            return EXIT_KERNEL_FAILED
        if not await ping(info, EXISTING_PING_TIMEOUT):
            report_error(
                self.console,
                f"kernel {name} is not answering",
                f"nothing answered at the heartbeat port of {running.connection_file} within "
                f"{EXISTING_PING_TIMEOUT:g} s: the kernel is dead or unreachable "
                "(`kernelkit ps` shows its state)",
            )
            return EXIT_KERNEL_FAILED
        async with AsyncKernelClient.from_connection_info(info) as kc:
            # Ready means IOPub delivers to us too: without it the first outputs (and the
            # idle status that ends the request) could be missed. A busy kernel answers
            # when it is done; Ctrl-C leaves it running.
            await kc.wait_for_ready(timeout=None)
            return await self._execute(kc)

    async def _start_and_execute(self) -> int:
        self.attached = attached_client(self.options.kernel)
        if self.attached is not None:  # a running remote kernel: a client only
            async with self.attached as kc:
                return await self._execute(kc)
        found = await find_kernel(self.console, self.options.kernel)
        if found is None:
            return EXIT_KERNEL_FAILED
        finder, kernel_type = found
        name = kernel_type.id
        # The kernel started before this module was imported, if it did (_earlyrun): the
        # provisioner adopts it when it is the kernel this start launches.
        early = claim_early(self.options.kernel) if self.options.sandbox is None else None
        factory = AdoptingFactory(early.kernel) if early is not None else None
        self.km = km = AsyncKernelManager(
            kernel_type=kernel_type,
            finder=finder,
            kernel_id=early.kernel_id if early is not None else None,
            provisioner_factory=factory,
            autorestart=False,
            sandbox=self.options.sandbox,
        )
        cwd = self.options.cwd
        shown = Progress(self.console, f"starting kernel {name}", manager_tail(km))
        shown.start()
        try:
            # Its provider's plan: the provisioner it names and the complete environment
            # (activated, if the kernel has one; what activation removed stays removed).
            await km.start_kernel(env=dict(self.options.env) or None, cwd=str(cwd) if cwd else None)
        except START_ERRORS as exc:
            await shown.stop()
            report_error(self.console, f"cannot start kernel {name!r}", exc)
            return EXIT_KERNEL_FAILED
        finally:
            if factory is not None:
                factory.release()
        self.record = record_started(km, "run")
        async with km.client() as kc:
            try:
                await kc.wait_for_ready(timeout=self.options.startup_timeout)
            except KernelDied as exc:
                await shown.stop()
                report_error(self.console, f"kernel {name!r} died while starting", exc)
                return EXIT_KERNEL_FAILED
            except KernelTimeout as exc:
                await shown.stop()
                tail = km.output_tail()
                detail = ("\n  last output:\n    " + "\n    ".join(tail)) if tail else ""
                report_error(self.console, f"kernel {name!r} did not start", f"{exc}{detail}")
                return EXIT_KERNEL_FAILED
            finally:
                await shown.stop()
            return await self._execute(kc)

    async def _execute(self, kc: AsyncKernelClient) -> int:
        loop = asyncio.get_running_loop()
        self.kc = kc
        self.executing = True
        timer = None
        if self.options.timeout is not None:
            timer = loop.call_later(self.options.timeout, self.on_timeout)
        piped = not _stdin_is_terminal()
        self.execution = loop.create_task(
            kc.execute_interactive(
                self.code,
                output_hook=self.json or self.printer,
                stdin_hook=functools.partial(_piped_input, echo=self.json is None)
                if piped
                else None,
                allow_stdin=True,
            )
        )
        try:
            reply = await self.execution
        except asyncio.CancelledError:
            if not self.gave_up:
                raise
            return EXIT_TIMEOUT if self.timed_out else EXIT_INTERRUPTED
        except KernelDied as exc:
            report_error(self.console, "the kernel died", exc)
            return EXIT_KERNEL_DIED
        except HeartbeatTimeout as exc:
            report_error(self.console, "the kernel stopped answering", exc)
            return EXIT_KERNEL_DIED
        finally:
            self.executing = False
            if timer is not None:
                timer.cancel()
        if self.json is not None:
            self.json.write("shell", reply)
        content = reply.content
        if self.timed_out:
            return EXIT_TIMEOUT
        if content.get("status") == "ok":
            return EXIT_OK
        if self.json is None and not self.printer.error_shown:
            self.printer.show_error(content)  # some kernels put the error only in the reply
        return EXIT_INTERRUPTED if self.interrupts else EXIT_CODE_RAISED


def run_command(*, code: str | None, file: Path | None, options: RunOptions) -> int:
    """``kernelkit run``: returns the exit status.

    Raises:
        typer.BadParameter: neither or both of ``code`` and ``file``, an unreadable file,
            or a ``--cwd`` that is not a directory.
    """
    source = read_code(code, file)
    if options.existing and (options.env or options.cwd):
        raise typer.BadParameter(
            "--env and --cwd apply to a new kernel, not to a running one (--existing)"
        )
    cwd = _check_cwd(options.cwd)
    if cwd != options.cwd:
        options = RunOptions(**{**options.__dict__, "cwd": cwd})
    quiet_library_logs()
    runner = _Run(source, options)
    if runner.saver is not None:
        try:
            runner.saver.prepare()
        except OSError as exc:
            report_error(
                runner.console, f"cannot create {options.save_outputs}", exc.strerror or exc
            )
            return EXIT_FAILED
    try:
        return asyncio.run(runner.main())
    except KernelError as exc:  # e.g. the kernel could not be stopped
        report_error(runner.console, f"kernel {options.kernel!r}", exc)
        return EXIT_KERNEL_FAILED
