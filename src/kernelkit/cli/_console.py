"""``kernelkit console``: an interactive console on any kernel (prompt_toolkit).

Completion comes from the kernel (``complete_request``), Enter asks the kernel whether
the code is complete (``is_complete_request``; Alt-Enter or Esc-Enter runs it anyway),
history is the kernel's plus a local file per language, code is coloured with the
pygments lexer the kernel names. Ctrl-C interrupts running code (and clears the line at
the prompt); Ctrl-D leaves, stopping the kernel only when this console started it. A
kernel that dies is reported with its reason, and one this console started can be
restarted.

Start-up: the prompt shows first. The kernel side (discovery, manager, client: most of
the import time) loads in a thread and starts the kernel while the prompt's side loads;
the bottom bar says "starting kernel ..." until the kernel answers. Code submitted
before that waits for it (Ctrl-C stops waiting); before it, Enter waits a little for
the kernel to decide whether the code is complete, and Tab offers nothing. A kernel
that fails to start ends the console with its reason (the start-failure status).
``--existing`` connects before the prompt (there is no process to wait for).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kernelkit._errors import HeartbeatTimeout, KernelDied, KernelError
from kernelkit.cli._console_io import colour_wanted
from kernelkit.cli._status import EXIT_KERNEL_DIED, EXIT_KERNEL_FAILED, EXIT_OK, EXIT_TERMINATED

__all__ = ["console_command"]

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from prompt_toolkit import PromptSession
    from rich.console import Console

    from kernelkit.cli._console_output import ConsoleOutput
    from kernelkit.cli._running import RunningKernel
    from kernelkit.client import AsyncKernelClient
    from kernelkit.manager import AsyncKernelManager
    from kernelkit.protocol import Message

#: Seconds the kernel has to say whether the code is complete (Enter waits this long).
REQUEST_TIMEOUT = 2.0

_DEATHS = (KernelDied, HeartbeatTimeout)


class _KernelGone(Exception):
    """Raised out of the prompt when the kernel died while the person was typing."""

    def __init__(self, error: KernelError) -> None:
        super().__init__(str(error))
        self.error = error


class _StartFailed(Exception):
    """Raised out of the prompt when the kernel could not be started or reached."""


@contextlib.contextmanager
def _signal_handlers(
    loop: asyncio.AbstractEventLoop, handlers: Mapping[signal.Signals, Callable[[], object]]
) -> Iterator[None]:
    """Loop signal handlers for the block (as ``_starting.signal_handlers``, which this
    module does not import: it loads the kernel side, which comes later)."""
    installed = []
    try:
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
            installed.append(signum)
        yield None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


class KernelConsole:
    """One console session: start (or connect to) the kernel, read-eval-print, leave.

    A kernel this console starts is started in the background: the prompt shows at
    once (with "starting kernel ..." in its bottom bar), and code run before the kernel
    is ready waits for it. ``--existing`` connects first (no process to wait for)."""

    def __init__(self, *, kernel: str, existing: str | None, startup_timeout: float) -> None:
        self.kernel = kernel
        self.existing = existing
        self.startup_timeout = startup_timeout
        self.colour = colour_wanted()
        self.km: AsyncKernelManager | None = None
        self.running: RunningKernel | None = None
        self.kc: AsyncKernelClient | None = None  # set once the kernel answers
        self.record: Path | None = None
        self.failure = ""  # what to say when the kernel could not be started or reached
        self.ready: asyncio.Future[None] | None = None
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
        self._history_path: asyncio.Future[Path] | None = None
        self._kernel_items: asyncio.Future[list[str]] | None = None
        self._output: ConsoleOutput | None = None
        self._err: Console | None = None

    # -- messages ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        sys.stderr.write(f"kernelkit: {text}\n")
        sys.stderr.flush()

    @property
    def err(self) -> Console:
        """Standard error for rich messages (the kernel side is loaded by then)."""
        if self._err is None:
            from kernelkit.cli._console_kernel import stderr_console  # loaded in a thread

            self._err = stderr_console()
        return self._err

    @property
    def output(self) -> ConsoleOutput:
        """Shows outputs (made when the first code runs: the kernel side is loaded)."""
        if self._output is None:
            from kernelkit.cli._console_kernel import ConsoleOutput  # loaded in a thread

            self._output = ConsoleOutput(colour=self.colour)
        return self._output

    def _load_ui(self) -> asyncio.Future[ModuleType]:
        """Import the prompt_toolkit side in a thread."""
        if self._ui_import is None:
            self._ui_import = asyncio.ensure_future(
                asyncio.to_thread(importlib.import_module, "kernelkit.cli._console_io")
            )
        return self._ui_import

    async def _ui(self) -> ModuleType:
        """The prompt_toolkit side, once imported."""
        return await self._load_ui()

    # -- connecting ----------------------------------------------------------------------

    def _set_manager(self, km: AsyncKernelManager) -> None:
        self.km = km

    async def _connect(self) -> None:
        """Load the kernel side (in a thread), then start the kernel or attach to the
        running one; sets :attr:`kc` when it answers, else :attr:`failure`."""
        await asyncio.to_thread(importlib.import_module, "kernelkit.cli._console_kernel")
        from kernelkit.cli._console_kernel import (  # loaded just above
            attach,
            quiet_library_logs,
            start_owned,
        )

        quiet_library_logs()
        try:
            if self.existing:
                got = await attach(self.existing)
            else:
                got = await start_owned(
                    self.kernel,
                    startup_timeout=self.startup_timeout,
                    on_died=self._died,
                    on_manager=self._set_manager,
                )
        except KernelError as exc:
            self.failure = f"kernelkit: kernel {self.existing or self.kernel!r}: {exc}\n"
            self._leave_prompt(_StartFailed())
            return
        self.km, self.running, self.record = got.km, got.running, got.record
        if got.kc is None:
            self.failure = got.failure
            self._leave_prompt(_StartFailed())
            return
        self.kc = got.kc
        if self.shutting_down:
            return  # left while it started: no banner
        if self.session is not None or self.existing is None:
            await self._on_ready(got.kc)

    async def _on_ready(self, kc: AsyncKernelClient) -> None:
        """The kernel answers: its language's history and colours, its banner."""
        ui = await self._ui()
        session = self._make_session(ui)
        info = kc.kernel_info_reply
        language_info = info.content.get("language_info", {}) if info is not None else {}
        language = str(language_info.get("name") or "unknown")
        if self._history_path is not None and not self._history_path.done():
            self._history_path.set_result(ui.history_path(language))
        self._spawn(self._feed_history(ui, kc))
        ui.kernel_ready(session)
        await ui.run_in_terminal(lambda: self._banner(kc))
        if self.colour:  # pygments loads in a thread: typing goes on meanwhile
            session.lexer = await asyncio.to_thread(ui.lexer_for, language_info)
            if session.app.is_running:
                session.app.invalidate()

    async def _feed_history(self, ui: ModuleType, kc: AsyncKernelClient) -> None:
        items: list[str] = await ui.kernel_history(kc)
        if self._kernel_items is not None and not self._kernel_items.done():
            self._kernel_items.set_result(items)

    def _leave_prompt(self, exception: BaseException) -> None:
        session = self.session
        if session is not None and session.app.is_running:
            session.app.exit(exception=exception)

    async def _wait_ready(self) -> AsyncKernelClient | None:
        """The client once the kernel is ready (code typed early waits here); None when
        Ctrl-C cancelled the wait or the kernel could not be started."""
        if self.kc is not None or self.ready is None:
            return self.kc
        loop = asyncio.get_running_loop()
        waiting = asyncio.ensure_future(asyncio.shield(self.ready))
        self.say("waiting for the kernel to start (Ctrl-C stops waiting)")
        with _signal_handlers(loop, {signal.SIGINT: waiting.cancel}):
            try:
                await waiting
            except asyncio.CancelledError:
                if self.terminated:
                    raise
                self.say("not waiting: the input was not run")
        return self.kc

    def _died(self, error: KernelError) -> None:
        """The owned kernel died: if the person is typing, leave the prompt to say so
        (while it still starts, the start reports it as a failure to start)."""
        if self.kc is not None:
            self._leave_prompt(_KernelGone(error))

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
        app = self.session.app if self.session is not None else None
        if app is None or not app.is_running or app.is_done:
            # The prompt ended meanwhile (Ctrl-D, end of input, an input already
            # accepted): nothing to run.
            return
        typed = buf.text
        self._typeahead = typed[len(seen) :] if typed.startswith(seen) else ""
        self._accepted = True
        self._accepted_len = len(seen)
        buf.text = run
        buf.validate_and_handle()

    async def _decide(self, buf: Any, text: str) -> None:
        lines = text.split("\n")
        if not text.strip() or (len(lines) > 1 and not lines[-1].strip()):
            # Empty, or a block ended with an empty line (as IPython and jupyter console
            # do): run it as it is.
            self._accept(buf, text, text.rstrip())
            return
        kc = self.kc
        if kc is None and self.ready is not None:
            # Typed while the kernel starts: it decides if it is ready soon, else the
            # code is run as it is (and waits for the kernel).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.ready), REQUEST_TIMEOUT)
            kc = self.kc
        if kc is None:
            self._accept(buf, text, text)
            return
        try:
            reply = await kc.is_complete(text, timeout=REQUEST_TIMEOUT)
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

    def _keys(self) -> str:
        stops = " and stops it" if self.existing is None else ""
        return f"Ctrl-D leaves{stops}; Ctrl-C interrupts."

    def _banner(self, kc: AsyncKernelClient) -> None:
        info = kc.kernel_info_reply
        content = info.content if info is not None else {}
        banner = str(content.get("banner") or "").strip()
        if banner:
            sys.stdout.write(banner + "\n")
        ident = self.km.kernel_id if self.km is not None else self.running.kernel_id  # type: ignore[union-attr]
        owned = "started by this console" if self.km is not None else "already running"
        keys = "" if self.existing is None else f" {self._keys()}"  # said while starting
        sys.stdout.write(f"kernelkit console: kernel {ident} ({owned}).{keys}\n")
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
        from kernelkit.cli._console_kernel import interrupt  # loaded in a thread

        await interrupt(self.km, self.running)

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
            with _signal_handlers(loop, {signal.SIGINT: self._on_sigint}):
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
        from kernelkit.cli._console_kernel import forget_kernel, record_started, report_error

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

    def _make_session(self, ui: ModuleType) -> PromptSession[str]:
        if self.session is None:
            loop = asyncio.get_running_loop()
            self._history_path = loop.create_future()
            self._kernel_items = loop.create_future()
            starting = "" if self.kc is not None else f" starting kernel {self.kernel}..."
            history = (self._history_path, self._kernel_items)
            self.session = ui.make_session(self, history, starting)
        return self.session

    def _start_failed(self) -> int:
        sys.stderr.write(self.failure)
        sys.stderr.flush()
        return EXIT_KERNEL_FAILED

    async def _repl(self) -> int:
        ui = await self._ui()
        session = self._make_session(ui)
        if self.kc is not None:  # --existing: connected before the prompt
            await self._on_ready(self.kc)
        else:
            sys.stdout.write(f"kernelkit console: starting kernel {self.kernel}. {self._keys()}\n")
            sys.stdout.flush()
        while True:
            try:
                typeahead, self._typeahead = self._typeahead, ""
                text = await session.prompt_async(default=typeahead, pre_run=self._pre_run)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                if self.kc is None and self.ready is not None:
                    # Left while the kernel starts: a failure to start is still said.
                    self.shutting_down = True
                    with contextlib.suppress(Exception):  # reported in self.failure
                        await asyncio.shield(self.ready)
                    if self.failure:
                        return self._start_failed()
                return EXIT_OK
            except _StartFailed:
                return self._start_failed()
            except _KernelGone as gone:
                if not await self._offer_restart(gone.error):
                    return EXIT_KERNEL_DIED
                continue
            if not text.strip():
                continue
            kc = await self._wait_ready()
            if kc is None:
                if self.failure:
                    return self._start_failed()
                continue  # Ctrl-C: back to the prompt
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
        with _signal_handlers(loop, handlers):
            self.ready = asyncio.ensure_future(self._connect())  # the kernel starts...
            self._load_ui()  # ... while the prompt's side loads
            try:
                if self.existing:
                    await asyncio.shield(self.ready)
                    if self.kc is None:
                        return self._start_failed()
                status = await self._repl()
                return EXIT_TERMINATED if self.terminated else status
            except asyncio.CancelledError:
                if not self.terminated:
                    raise
                return EXIT_TERMINATED
            except OSError:
                return EXIT_TERMINATED  # the terminal is gone (a write failed)
            finally:
                self.shutting_down = True
                await self._close()

    async def _close(self) -> None:
        """Leave: a kernel still starting is let finish (then stopped), so that no
        process is left behind."""
        if self.ready is not None:
            with contextlib.suppress(Exception):  # already reported (self.failure)
                await asyncio.shield(self.ready)
        if self.kc is not None:
            await self.kc.aclose()
        if self.km is not None:
            if self.km.has_kernel:
                with contextlib.suppress(OSError):  # no terminal to say it on
                    self.say("shutting the kernel down")
            await self.km.shutdown_kernel()
        if self.record is not None:
            from kernelkit.cli._console_kernel import forget_kernel  # loaded in a thread

            forget_kernel(self.record)


def console_command(*, kernel: str, existing: str | None, startup_timeout: float) -> int:
    """``kernelkit console``: returns the exit status."""
    console = KernelConsole(kernel=kernel, existing=existing, startup_timeout=startup_timeout)
    return asyncio.run(console.main())
