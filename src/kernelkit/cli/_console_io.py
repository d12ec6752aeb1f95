"""The parts of ``kernelkit console`` that talk to prompt_toolkit: completion from the
kernel, history (the kernel's and a local file), the lexer for the kernel's language,
and how outputs are shown."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.lexers import Lexer, PygmentsLexer

from kernelkit._errors import KernelError
from kernelkit.cli._output import OutputSaver, traceback_text
from kernelkit.client import AsyncKernelClient
from kernelkit.protocol import Message

__all__ = [
    "ConsoleOutput",
    "KernelCompleter",
    "KernelHistory",
    "colour_wanted",
    "history_path",
    "lexer_for",
]

#: Seconds the kernel has to answer a completion or history request (the console never
#: waits longer than this for them: a busy kernel just offers nothing).
REQUEST_TIMEOUT = 2.0

_IMAGE_TYPES = (
    ("image/png", ".png"),
    ("image/jpeg", ".jpg"),
    ("image/gif", ".gif"),
    ("image/svg+xml", ".svg"),
)


def colour_wanted(stream: Any = None) -> bool:
    """Colours only on a terminal, and never with ``NO_COLOR`` set (no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


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
    run in this kernel from other clients, or in earlier sessions it kept)."""

    def __init__(self, path: Path, kernel_items: Iterable[str] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path))
        self._kernel_items = [item for item in kernel_items if item.strip()]

    def load_history_strings(self) -> Iterator[str]:
        # Newest first, as prompt_toolkit expects: the file's, then the kernel's.
        yield from super().load_history_strings()
        yield from reversed(self._kernel_items)


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


class ConsoleOutput:
    """Shows the IOPub messages of the console's requests: streams as they come,
    results as ``Out[n]:``, images saved to files (their paths shown), tracebacks."""

    def __init__(self, *, colour: bool) -> None:
        self.colour = colour
        self._saver: OutputSaver | None = None
        self._open_line = False
        #: True once a traceback was shown (reset by the console before each input).
        self.error_shown = False

    def __call__(self, msg: Message) -> None:
        msg_type = msg.header.msg_type
        content = msg.content
        if msg_type == "stream":
            stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
            self._write(stream, str(content.get("text", "")))
        elif msg_type in ("execute_result", "display_data", "update_display_data"):
            data = content.get("data")
            if isinstance(data, Mapping):
                count = content.get("execution_count")
                prefix = f"Out[{count}]: " if msg_type == "execute_result" and count else ""
                self._display(data, prefix)
        elif msg_type == "error":
            self.show_error(content)

    def show_error(self, content: Mapping[str, object]) -> None:
        """Print a traceback (of an ``error`` output or an error reply)."""
        self.error_shown = True
        self._write(sys.stderr, traceback_text(content, plain=not self.colour))

    def _display(self, data: Mapping[str, Any], prefix: str) -> None:
        image = next((mime for mime, _ in _IMAGE_TYPES if mime in data), None)
        if image is not None:
            saver = self._images()
            path = saver.save({image: data[image]})
            self._write(sys.stdout, f"{prefix}[{image} saved to {path}]\n")
            prefix = ""
        text = data.get("text/plain")
        if text is not None and (image is None or not str(text).startswith("<")):
            self._write(sys.stdout, f"{prefix}{text}\n")
        elif image is None:
            kinds = ", ".join(sorted(data)) or "nothing"
            self._write(sys.stdout, f"{prefix}[{kinds}: no plain text to show]\n")

    def _images(self) -> OutputSaver:
        if self._saver is None:
            self._saver = OutputSaver(Path(tempfile.mkdtemp(prefix="kernelkit-console-")))
        return self._saver

    def end_line(self) -> None:
        """End an unfinished last line before the next prompt."""
        if self._open_line:
            self._write(sys.stdout, "\n")

    def _write(self, stream: Any, text: str) -> None:
        if not text:
            return
        stream.write(text)
        stream.flush()
        self._open_line = not text.endswith("\n")
