"""The parts of ``kernelkit console`` that talk to prompt_toolkit: the prompt session and
its keys, completion from the kernel, history (the kernel's and a local file), the lexer
for the kernel's language. The console imports this module in a thread while its kernel
starts (prompt_toolkit and pygments take a good part of a second to import)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import Lexer, PygmentsLexer
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import Style

from kernelkit._errors import KernelError
from kernelkit._jupyterpaths import jupyter_data_dir
from kernelkit.client import AsyncKernelClient

__all__ = [
    "KernelCompleter",
    "KernelHistory",
    "ask",
    "history_path",
    "kernel_history",
    "lexer_for",
    "make_session",
]

#: Seconds the kernel has to answer a completion or history request (the console never
#: waits longer than this for them: a busy kernel just offers nothing).
REQUEST_TIMEOUT = 2.0


class KernelCompleter(Completer):
    """Completions from the kernel (``complete_request``), asked on the event loop."""

    def __init__(self, kc: AsyncKernelClient) -> None:
        self.kc = kc

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return ()  # only the async path is used (the client lives on the prompt's loop)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        code, pos = document.text, document.cursor_position
        try:
            reply = await self.kc.complete(code, cursor_pos=pos, timeout=REQUEST_TIMEOUT)
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


class KernelHistory(FileHistory):
    """The local history file, with the kernel's own recent history before it (what was
    run in this kernel from other clients, or in earlier sessions it kept). The kernel's
    part is awaited while the prompt already shows."""

    def __init__(self, path: Path, kernel_items: Awaitable[list[str]] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path))
        self._kernel_items = kernel_items

    async def load(self) -> AsyncGenerator[str, None]:
        # Newest first, as prompt_toolkit expects: the file's, then the kernel's.
        async for item in super().load():
            yield item
        pending, self._kernel_items = self._kernel_items, None
        if pending is not None:
            for item in reversed(await pending):
                if item.strip():
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


class ConsoleHooks(Protocol):
    """What the prompt needs from the console."""

    count: int
    colour: bool

    def enter(self, buf: Buffer) -> None: ...


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
    kc: AsyncKernelClient,
    language_info: Mapping[str, Any],
    kernel_items: Awaitable[list[str]] | None,
) -> PromptSession[str]:
    """The prompt of the console: ``In [n]:``, kernel completion, history, colours."""
    language = str(language_info.get("name") or "unknown")

    def prompt() -> FormattedText:
        return FormattedText(
            [("class:in", "In ["), ("class:num", str(console.count)), ("class:in", "]: ")]
        )

    def continuation(width: int, line_number: int, wrap_count: int) -> FormattedText:
        return FormattedText([("class:in", "...: ".rjust(width))])

    colour = console.colour
    return PromptSession(
        prompt,
        history=KernelHistory(history_path(language), kernel_items),
        completer=KernelCompleter(kc),
        complete_while_typing=False,
        lexer=lexer_for(language_info) if colour else None,
        multiline=True,
        key_bindings=_bindings(console),
        prompt_continuation=continuation,
        style=Style.from_dict({"in": "ansigreen", "num": "ansigreen bold"}),
        include_default_pygments_style=colour,
        color_depth=None if colour else ColorDepth.DEPTH_1_BIT,
    )


async def ask(prompt: str, *, password: bool = False) -> str:
    """One line from the person (``input()`` of the kernel, yes/no questions).

    Raises:
        KeyboardInterrupt: Ctrl-C.
        EOFError: Ctrl-D.
    """
    session: PromptSession[str] = PromptSession()
    return await session.prompt_async(prompt, is_password=password)
