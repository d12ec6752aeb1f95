"""The parts of ``kernelkit console`` that talk to prompt_toolkit: the prompt session and
its keys, completion from the kernel, history (the kernel's and a local file), the lexer
for the kernel's language. The prompt shows before the kernel is ready, so each of these
copes with no kernel yet: no completions, history that arrives later. This module
imports nothing of the kernel side (discovery, manager, client): those load in a thread
while the prompt already shows."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator, Awaitable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import Lexer, PygmentsLexer
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import Style

from kernelkit._errors import KernelError
from kernelkit._jupyterpaths import jupyter_data_dir

if TYPE_CHECKING:
    from kernelkit.client import AsyncKernelClient

__all__ = [
    "KernelCompleter",
    "KernelHistory",
    "ask",
    "colour_wanted",
    "kernel_ready",
    "history_path",
    "kernel_history",
    "lexer_for",
    "make_session",
    "run_in_terminal",
]

#: Seconds the kernel has to answer a completion or history request (the console never
#: waits longer than this for them: a busy kernel just offers nothing).
REQUEST_TIMEOUT = 2.0


def colour_wanted(stream: Any = None) -> bool:
    """Colours only on a terminal, and never with ``NO_COLOR`` set (no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ConsoleHooks(Protocol):
    """What the prompt needs from the console."""

    count: int
    colour: bool
    kc: AsyncKernelClient | None  # None until the kernel is ready

    def enter(self, buf: Buffer) -> None: ...


class KernelCompleter(Completer):
    """Completions from the kernel (``complete_request``), asked on the event loop; none
    before the kernel is ready."""

    def __init__(self, console: ConsoleHooks) -> None:
        self.console = console

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return ()  # only the async path is used (the client lives on the prompt's loop)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        code, pos = document.text, document.cursor_position
        kc = self.console.kc
        if kc is None:
            return  # still starting
        try:
            reply = await kc.complete(code, cursor_pos=pos, timeout=REQUEST_TIMEOUT)
        except KernelError:
            return  # busy, dead or slow: no completions this time
        content = reply.content
        if content.get("status") != "ok":
            return
        start = content.get("cursor_start", pos)
        matches = content.get("matches") or []
        start = start if isinstance(start, int) and 0 <= start <= pos else pos
        for match in matches:
            if isinstance(match, str):
                yield Completion(match, start_position=start - pos)


def history_path(language: str) -> Path:
    """The local history file of the console for a language."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in language) or "unknown"
    return Path(jupyter_data_dir()) / "kernelkit" / f"console-history-{safe}"


class KernelHistory(History):
    """The local history file, with the kernel's own recent history before it (what was
    run in this kernel from other clients, or in earlier sessions it kept).

    Both are known only once the kernel is ready (the file is per language): ``path``
    and then ``kernel_items`` arrive while the prompt already shows. Inputs run before
    that are written to the file once its path is known."""

    def __init__(self, path: Awaitable[Path], kernel_items: Awaitable[list[str]]) -> None:
        super().__init__()
        self._path: asyncio.Future[Path] = asyncio.ensure_future(path)
        self._kernel_items: asyncio.Future[list[str]] | None = asyncio.ensure_future(kernel_items)
        self._file: FileHistory | None = None
        self._unsaved: list[str] = []

    def load_history_strings(self) -> Iterable[str]:
        return ()  # unused: load() reads the file once its path is known

    def store_string(self, string: str) -> None:
        if self._file is not None:
            self._file.store_string(string)
        else:
            self._unsaved.append(string)

    async def load(self) -> AsyncGenerator[str, None]:
        # Newest first, as prompt_toolkit expects: the file's, then the kernel's. A new
        # prompt cancels the loading of the one before (and loads again), hence the
        # shields: what arrives stays for the next prompt's load.
        if self._file is None:
            path = await asyncio.shield(self._path)
            if self._file is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = file = FileHistory(str(path))
                for item in self._unsaved:
                    file.store_string(item)
                self._unsaved = []
                # The file now holds this session's inputs too (newest first).
                self._loaded_strings = list(file.load_history_strings())
                self._loaded = True
        shown = list(self._loaded_strings)
        for item in shown:
            yield item
        if self._kernel_items is not None:
            kernel_items = await asyncio.shield(self._kernel_items)
            if self._kernel_items is not None:
                self._kernel_items = None
                older = [item for item in reversed(kernel_items) if item.strip()]
                self._loaded_strings.extend(older)
                for item in older:
                    yield item


async def kernel_history(kc: AsyncKernelClient, n: int = 200) -> list[str]:
    """The kernel's last ``n`` inputs, oldest first ([] when it keeps none or is slow)."""
    try:
        reply = await kc.history(
            hist_access_type="tail", n=n, output=False, raw=True, timeout=REQUEST_TIMEOUT
        )
    except KernelError:
        return []
    items = reply.content.get("history") or []
    return [str(item[2]) for item in items if isinstance(item, list | tuple) and len(item) >= 3]


def lexer_for(language_info: Mapping[str, Any]) -> Lexer | None:
    """A pygments lexer for the kernel's language (``pygments_lexer``, then ``name``)."""
    from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped]
    from pygments.util import ClassNotFound  # type: ignore[import-untyped]

    for key in ("pygments_lexer", "name"):
        name = language_info.get(key)
        if isinstance(name, str) and name:
            try:
                return PygmentsLexer(type(get_lexer_by_name(name)))
            except ClassNotFound:
                continue
    return None


def _bindings(console: ConsoleHooks) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        state = buf.complete_state
        if state is not None and state.current_completion is not None:
            buf.apply_completion(state.current_completion)
            return
        if not buf.document.is_cursor_at_the_end:
            buf.insert_text("\n")
            return
        # Noted now: keys typed after this Enter may be in the buffer by the time the
        # kernel has said whether the code is complete.
        console.enter(buf)

    @kb.add("escape", "enter")
    def _(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    return kb


def make_session(
    console: ConsoleHooks,
    history: tuple[Awaitable[Path], Awaitable[list[str]]],
    starting: str,
) -> PromptSession[str]:
    """The prompt of the console: ``In [n]:``, kernel completion, history, colours. It
    shows ``starting`` in its bottom bar until :func:`kernel_ready` is called."""

    def prompt() -> FormattedText:
        return FormattedText(
            [("class:in", "In ["), ("class:num", str(console.count)), ("class:in", "]: ")]
        )

    def continuation(width: int, line_number: int, wrap_count: int) -> FormattedText:
        return FormattedText([("class:in", "...: ".rjust(width))])

    colour = console.colour
    return PromptSession(
        prompt,
        history=KernelHistory(*history),
        completer=KernelCompleter(console),
        complete_while_typing=False,
        multiline=True,
        key_bindings=_bindings(console),
        prompt_continuation=continuation,
        bottom_toolbar=starting or None,
        style=Style.from_dict({"in": "ansigreen", "num": "ansigreen bold"}),
        include_default_pygments_style=colour,
        color_depth=None if colour else ColorDepth.DEPTH_1_BIT,
    )


def kernel_ready(session: PromptSession[str]) -> None:
    """The kernel answers: the bottom bar saying it starts goes."""
    session.bottom_toolbar = None
    if session.app.is_running:
        session.app.invalidate()


async def ask(prompt: str, *, password: bool = False) -> str:
    """One line from the person (``input()`` of the kernel, yes/no questions).

    Raises:
        KeyboardInterrupt: Ctrl-C.
        EOFError: Ctrl-D.
    """
    session: PromptSession[str] = PromptSession()
    return await session.prompt_async(prompt, is_password=password)
