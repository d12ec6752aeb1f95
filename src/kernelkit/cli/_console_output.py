"""How ``kernelkit console`` shows outputs (no prompt_toolkit here: this module loads
with the kernel side, in a thread while the prompt already shows)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernelkit.cli._output import OutputSaver, traceback_text
from kernelkit.protocol import Message

__all__ = ["ConsoleOutput"]

_IMAGE_TYPES = (
    ("image/png", ".png"),
    ("image/jpeg", ".jpg"),
    ("image/gif", ".gif"),
    ("image/svg+xml", ".svg"),
)


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
