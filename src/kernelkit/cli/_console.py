"""``kernelkit console``: an interactive console on any kernel (prompt_toolkit).

Completion comes from the kernel (``complete_request``), Enter asks the kernel whether
the code is complete (``is_complete_request``; Alt-Enter or Esc-Enter runs it anyway),
history is the kernel's plus a local file per language, code is coloured with the
pygments lexer the kernel names. Ctrl-C interrupts running code (and clears the line at
the prompt); Ctrl-D leaves, stopping the kernel only when this console started it. A
kernel that dies is reported with its reason, and one this console started can be
restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from kernelkit._connection import read_connection_file
from kernelkit._errors import (
    ConnectionFileError,
    HeartbeatTimeout,
    KernelDied,
    KernelError,
    KernelTimeout,
)
from kernelkit.cli._console_output import ConsoleOutput, colour_wanted
from kernelkit.cli._progress import manager_tail, progress
from kernelkit.cli._ps import interrupt_running, ping
from kernelkit.cli._running import RunningKernel, UnknownKernel, forget_kernel, resolve_kernel
from kernelkit.cli._starting import (
    START_ERRORS,
    find_kernel,
    quiet_library_logs,
    record_started,
    report_error,
    signal_handlers,
)
from kernelkit.cli._status import EXIT_KERNEL_DIED, EXIT_KERNEL_FAILED, EXIT_OK, EXIT_TERMINATED
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.protocol import Message

__all__ = ["console_command"]

if TYPE_CHECKING:
    from types import ModuleType

    from prompt_toolkit import PromptSession

#: Seconds the kernel has to say whether the code is complete (Enter waits this long).
REQUEST_TIMEOUT = 2.0

_DEATHS = (KernelDied, HeartbeatTimeout)


class _KernelGone(Exception):
    """Raised out of the prompt when the kernel died while the person was typing."""

    def __init__(self, error: KernelError) -> None:
        super().__init__(str(error))
        self.error = error


class KernelConsole:
    """One console session: connect (or start), read-eval-print, leave."""

    def __init__(self, *, kernel: str, existing: str | None, startup_timeout: float) -> None:
        self.kernel = kernel
        self.existing = existing
        self.startup_timeout = startup_timeout
        self.err = Console(stderr=True)
        self.colour = colour_wanted()
        self.output = ConsoleOutput(colour=self.colour)
        self.km: AsyncKernelManager | None = None
        self.running: RunningKernel | None = None
        self.kc: AsyncKernelClient | None = None
        self.record: Path | None = None
        self.count = 1
        self.session: PromptSession[str] | None = None
        self.execution: asyncio.Task[Message] | None = None
        self.interrupts = 0
        self.main_task: asyncio.Task[Any] | None = None
        self.terminated = False
        self.shutting_down = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._enter_lock = asyncio.Lock()
        self._accepted = False  # the current input was accepted: later Enters wait
        self._enter_later: list[int] = []  # Enters typed ahead, where in the next input
        self._accepted_len = 0
        self._typeahead = ""
        self._inserted = 0  # characters decisions added to the current input
        self._ui_import: asyncio.Future[ModuleType] | None = None

    # -- messages ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.err.print(f"kernelkit: {text}", highlight=False, markup=False, soft_wrap=True)

    def _load_ui(self) -> asyncio.Future[ModuleType]:
        """Import the prompt_toolkit side in a thread (started while the kernel starts)."""
        if self._ui_import is None:
            self._ui_import = asyncio.ensure_future(
                asyncio.to_thread(importlib.import_module, "kernelkit.cli._console_io")
            )
        return self._ui_import

    async def _ui(self) -> ModuleType:
        """The prompt_toolkit side, once imported."""
        return await self._load_ui()

    # -- connecting ----------------------------------------------------------------------

    async def _start(self) -> AsyncKernelClient | None:
        found = await find_kernel(self.err, self.kernel)
        if found is None:
            return None
        finder, kernel_type = found
        name = kernel_type.id
        self.km = km = AsyncKernelManager(
            kernel_type=kernel_type, finder=finder, autorestart=False, on_died=self._died
        )
        async with progress(self.err, f"starting kernel {name}", manager_tail(km)):
            try:
                await km.start_kernel()
            except START_ERRORS as exc:
                failed: object = exc
            else:
                failed = None
                self.record = record_started(km, "console")
                kc = km.client()
                await kc.start()
                try:
                    await kc.wait_for_ready(timeout=self.startup_timeout)
                except (KernelDied, KernelTimeout) as exc:
                    await kc.aclose()
                    failed = exc
        if failed is not None:
            report_error(self.err, f"cannot start kernel {name!r}", failed)
            return None
        return kc

    async def _attach(self, ident: str) -> AsyncKernelClient | None:
        try:
            self.running = running = resolve_kernel(ident)
        except UnknownKernel as exc:
            report_error(self.err, "no such kernel", exc)
            return None
        name = running.kernel_id
        if running.process_gone:
            report_error(
                self.err,
                f"kernel {name} is dead",
                "its process has exited (`kernelkit ps --clean` removes its files)",
            )
            return None
        try:
            info = read_connection_file(running.connection_file)
        except ConnectionFileError as exc:
            report_error(self.err, f"cannot use kernel {name}", exc)
            return None
        if not await ping(info, 3.0):
            report_error(
                self.err,
                f"kernel {name} is not answering",
                f"nothing answered at the heartbeat port of {running.connection_file}: the "
                "kernel is dead or unreachable (`kernelkit ps` shows its state)",
            )
            return None
        kc = AsyncKernelClient.from_connection_info(info)
        await kc.start()
        await kc.wait_for_ready(timeout=None)  # a busy kernel answers when done
        return kc

    def _died(self, error: KernelError) -> None:
        """The owned kernel died: if the person is typing, leave the prompt to say so."""
        session = self.session
        if session is not None and session.app.is_running:
            session.app.exit(exception=_KernelGone(error))

    # -- the prompt ----------------------------------------------------------------------

    def enter(self, buf: Any) -> None:
        """Enter pressed at the end of the input: noted now (where it was typed), decided
        by :meth:`_enter` once the kernel says whether the code is complete (in a task of
        this console: the prompt's own tasks end with the prompt)."""
        self._spawn(self._enter(buf, len(buf.text), self._inserted))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enter(self, buf: Any, at: int, inserted: int) -> None:
        """Run the code up to ``at`` (where Enter was typed; ``inserted`` counts the
        characters earlier decisions had added by then) if the kernel says it is
        complete, else put a new line there with the indent the kernel suggests.

        Keys typed while the kernel is asked are neither lost nor mixed in: text typed
        after an input that runs starts the next prompt, and an Enter typed after it is
        decided there."""
        async with self._enter_lock:  # Enters typed fast are decided one after another
            cut = at + self._inserted - inserted
            if self._accepted:
                # It belongs to the next prompt's text (what was typed after the input
                # that runs): decided there, at the same place in that text.
                self._enter_later.append(cut - self._accepted_len)
                return
            await self._decide(buf, buf.text[:cut])

    def _accept(self, buf: Any, seen: str, run: str) -> None:
        """Run ``run`` (the text up to Enter, ``seen``, tidied); what was typed after
        ``seen`` starts the next prompt."""
        typed = buf.text
        self._typeahead = typed[len(seen) :] if typed.startswith(seen) else ""
        self._accepted = True
        self._accepted_len = len(seen)
        buf.text = run
        buf.validate_and_handle()

    async def _decide(self, buf: Any, text: str) -> None:
        lines = text.split("\n")
        if not text.strip() or self.kc is None or (len(lines) > 1 and not lines[-1].strip()):
            # Empty, or a block ended with an empty line (as IPython and jupyter console
            # do): run it as it is.
            self._accept(buf, text, text.rstrip())
            return
        try:
            reply = await self.kc.is_complete(text, timeout=REQUEST_TIMEOUT)
            status = reply.content.get("status")
            indent = str(reply.content.get("indent") or "")
        except KernelError:
            status, indent = "unknown", ""  # run it: the kernel will say what is wrong
        if status != "incomplete":
            self._accept(buf, text, text)
            return
        typed = buf.text
        extra = typed[len(text) :] if typed.startswith(text) else ""
        buf.text = text + "\n" + indent + extra
        buf.cursor_position = len(buf.text)
        self._inserted += 1 + len(indent)

    def _pre_run(self) -> None:
        """A new prompt: what was typed ahead is already in it; an Enter typed ahead
        is decided now."""
        self._accepted = False
        self._inserted = 0
        later, self._enter_later = self._enter_later, []
        if self.session is not None:
            buf = self.session.default_buffer
            for at in later:  # in order: each waits for the one before (a FIFO lock)
                self._spawn(self._enter(buf, at, 0))

    def _banner(self, kc: AsyncKernelClient) -> None:
        info = kc.kernel_info_reply
        content = info.content if info is not None else {}
        banner = str(content.get("banner") or "").strip()
        if banner:
            sys.stdout.write(banner + "\n")
        ident = self.km.kernel_id if self.km is not None else self.running.kernel_id  # type: ignore[union-attr]
        owned = "started by this console" if self.km is not None else "already running"
        sys.stdout.write(
            f"kernelkit console: kernel {ident} ({owned}). Ctrl-D leaves"
            f"{' and stops it' if self.km is not None else ''}; Ctrl-C interrupts.\n"
        )
        sys.stdout.flush()

    # -- input() from the kernel ---------------------------------------------------------

    async def _stdin(self, request: Message) -> str | None:
        prompt = str(request.content.get("prompt", ""))
        password = bool(request.content.get("password"))
        try:
            answer: str = await (await self._ui()).ask(prompt, password=password)
            return answer
        except KeyboardInterrupt:
            await self._interrupt()
            return None  # the interrupt ends the kernel's wait
        except EOFError:
            return "\x04"  # end of input: ipykernel raises EOFError

    # -- executing -----------------------------------------------------------------------

    async def _interrupt(self) -> None:
        try:
            if self.km is not None:
                await self.km.interrupt_kernel()
            elif self.running is not None:
                await interrupt_running(self.running)
        except (KernelError, OSError) as exc:
            report_error(self.err, "could not interrupt the kernel", exc)

    def _on_sigint(self) -> None:
        self.interrupts += 1
        if self.interrupts > 1 and self.execution is not None:
            self.say("not waiting for the interrupted code (Ctrl-D leaves)")
            self.execution.cancel()
            return
        self._spawn(self._interrupt())

    async def _execute(self, kc: AsyncKernelClient, code: str) -> None:
        """Run one input; raises KernelDied/HeartbeatTimeout when the kernel is gone."""
        loop = asyncio.get_running_loop()
        self.interrupts = 0
        self.output.error_shown = False
        self.execution = loop.create_task(
            kc.execute_interactive(
                code, output_hook=self.output, stdin_hook=self._stdin, allow_stdin=True
            )
        )
        try:
            with signal_handlers(loop, {signal.SIGINT: self._on_sigint}):
                reply = await self.execution
        except asyncio.CancelledError:
            if self.terminated:
                raise
            return
        finally:
            self.execution = None
            self.output.end_line()
        content = reply.content
        if content.get("status") == "error" and not self.output.error_shown:
            self.output.show_error(content)  # some kernels put the error only in the reply
        count = content.get("execution_count")
        if isinstance(count, int) and count > 0:
            self.count = count + 1
        elif code.strip():
            self.count += 1

    async def _offer_restart(self, error: KernelError) -> bool:
        """Say why the kernel died; restart it if this console owns it and the person
        agrees. True when there is a kernel again."""
        report_error(self.err, "the kernel died", error)
        if self.km is None or self.kc is None:
            self.say("it was not started by this console, so it cannot be restarted here")
            return False
        try:
            answer = await (await self._ui()).ask("Restart the kernel? [Y/n] ")
        except (EOFError, KeyboardInterrupt):
            return False
        if answer.strip().lower() not in ("", "y", "yes"):
            return False
        try:
            await self.km.restart_kernel()
            await self.kc.wait_for_ready(timeout=self.startup_timeout)
        except (KernelError, OSError) as exc:
            report_error(self.err, "could not restart the kernel", exc)
            return False
        forget_kernel(self.record)
        self.record = record_started(self.km, "console")
        self.count = 1
        self.say("kernel restarted")
        return True

    # -- the session ---------------------------------------------------------------------

    async def _repl(self, kc: AsyncKernelClient) -> int:
        ui = await self._ui()
        info = kc.kernel_info_reply
        language_info = info.content.get("language_info", {}) if info is not None else {}
        history = asyncio.ensure_future(ui.kernel_history(kc))  # arrives while typing
        self.session = session = ui.make_session(self, kc, language_info, history)
        self._banner(kc)
        while True:
            try:
                typeahead, self._typeahead = self._typeahead, ""
                text = await session.prompt_async(default=typeahead, pre_run=self._pre_run)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return EXIT_OK
            except _KernelGone as gone:
                if not await self._offer_restart(gone.error):
                    return EXIT_KERNEL_DIED
                continue
            if not text.strip():
                continue
            try:
                await self._execute(kc, text)
            except _DEATHS as exc:
                if not await self._offer_restart(exc):
                    return EXIT_KERNEL_DIED

    def _on_terminate(self) -> None:
        """SIGTERM, or SIGHUP (the terminal went away): leave as Ctrl-D would."""
        self.terminated = True
        if self.shutting_down:
            return  # already leaving: let the shutdown finish
        session = self.session
        if session is not None and session.app.is_running:
            session.app.exit(exception=EOFError())
        elif self.main_task is not None:
            self.main_task.cancel()

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self.main_task = asyncio.current_task()
        handlers = {signal.SIGTERM: self._on_terminate, signal.SIGHUP: self._on_terminate}
        with signal_handlers(loop, handlers):
            self._load_ui()  # prompt_toolkit loads while the kernel starts
            try:
                kc = await (self._attach(self.existing) if self.existing else self._start())
                if kc is None:
                    return EXIT_KERNEL_FAILED
                self.kc = kc
                try:
                    status = await self._repl(kc)
                finally:
                    await kc.aclose()
                return EXIT_TERMINATED if self.terminated else status
            except asyncio.CancelledError:
                if not self.terminated:
                    raise
                return EXIT_TERMINATED
            except OSError:
                return EXIT_TERMINATED  # the terminal is gone (a write failed)
            finally:
                self.shutting_down = True
                if self.km is not None:
                    if self.km.has_kernel:
                        with contextlib.suppress(OSError):  # no terminal to say it on
                            self.say("shutting the kernel down")
                    await self.km.shutdown_kernel()
                forget_kernel(self.record)


def console_command(*, kernel: str, existing: str | None, startup_timeout: float) -> int:
    """``kernelkit console``: returns the exit status."""
    quiet_library_logs()
    console = KernelConsole(kernel=kernel, existing=existing, startup_timeout=startup_timeout)
    try:
        return asyncio.run(console.main())
    except KernelError as exc:
        report_error(console.err, f"kernel {kernel!r}", exc)
        return EXIT_KERNEL_FAILED
