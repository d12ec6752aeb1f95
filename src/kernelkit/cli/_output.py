"""How ``kernelkit run`` shows a kernel's output: as a terminal shows it, as JSON lines for
tools, and rich outputs (images, HTML, JSON) kept as files with ``--save-outputs``."""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import orjson

from kernelkit.protocol import Message

__all__ = [
    "JsonLines",
    "OutputPrinter",
    "OutputSaver",
    "is_terminal",
    "traceback_text",
]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

#: The richest first: what ``--save-outputs`` writes of a display output, and its suffix.
_RICH_TYPES = (
    ("image/png", ".png"),
    ("image/jpeg", ".jpg"),
    ("image/gif", ".gif"),
    ("image/svg+xml", ".svg"),
    ("application/pdf", ".pdf"),
    ("text/html", ".html"),
    ("application/json", ".json"),
    ("text/latex", ".tex"),
    ("text/markdown", ".md"),
)
_BINARY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "application/pdf"})
_DISPLAY_TYPES = ("execute_result", "display_data", "update_display_data")


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an open terminal."""
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


def traceback_text(content: Mapping[str, object], *, plain: bool) -> str:
    """The text of an ``error`` output or error reply, ending in exactly one newline.

    Traceback lines are joined by newlines unless they already end in one (some kernels
    send them so); without a traceback, ``ename: evalue`` (or what is known of it).
    """
    lines = content.get("traceback")
    if isinstance(lines, list) and lines:
        text = "".join(s if s.endswith("\n") else s + "\n" for s in map(str, lines))
    else:
        ename = str(content.get("ename") or "").strip()
        evalue = str(content.get("evalue") or "").strip()
        if ename and evalue:
            text = f"{ename}: {evalue}\n"
        elif ename or evalue:
            text = f"{ename or 'Error'}{': ' + evalue if evalue else ''}\n"
        else:
            text = "Error (the kernel gave no name, message or traceback for it)\n"
    return _ANSI.sub("", text) if plain else text


class OutputSaver:
    """``--save-outputs DIR``: each display output with a rich type written as a file of
    its richest type, named in output order (``001.png``, ``002.html``, ...).

    Outputs that carry only ``text/plain`` are printed, not saved.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.saved: list[Path] = []
        self._count = 0

    def prepare(self) -> None:
        """Create the directory.

        Raises:
            OSError: it cannot be created.
        """
        self.directory.mkdir(parents=True, exist_ok=True)

    def save(self, data: Mapping[str, Any]) -> Path | None:
        """Write the richest type of a display output's ``data``; its path, or None when
        it has nothing richer than plain text.

        Raises:
            OSError: the file cannot be written.
        """
        for mime, suffix in _RICH_TYPES:
            if mime in data:
                self._count += 1
                path = self.directory / f"{self._count:03d}{suffix}"
                path.write_bytes(_payload(mime, data[mime]))
                self.saved.append(path)
                return path
        return None


def _payload(mime: str, value: object) -> bytes:
    if mime == "application/json" or not isinstance(value, str | list):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"
    text = "".join(value) if isinstance(value, list) else value
    if mime in _BINARY_TYPES:
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return text.encode()  # not base64 after all: keep what was sent
    return text.encode()


def _rich_summary(data: Mapping[str, Any]) -> str | None:
    for mime, _ in _RICH_TYPES:
        if mime in data:
            return mime
    return None


class OutputPrinter:
    """The output hook of ``kernelkit run``: each IOPub message printed as it arrives.

    stdout streams and ``text/plain`` of results and displays go to stdout; stderr
    streams and tracebacks to stderr (colour codes removed unless it is a terminal). A
    display output with a rich type is saved by ``saver`` when given; one with no plain
    text gets a line saying what it was. :meth:`finish` ends a terminal's last line.
    """

    def __init__(self, out: TextIO, err: TextIO, *, saver: OutputSaver | None = None) -> None:
        self._out = out
        self._err = err
        # Kernels colour their tracebacks: keep that only for a terminal, and never
        # with NO_COLOR set (no-color.org).
        self._plain_err = not is_terminal(err) or bool(os.environ.get("NO_COLOR"))
        self._saver = saver
        self._open_line: dict[int, bool] = {}
        #: True once an ``error`` message (a traceback) was printed.
        self.error_shown = False

    def __call__(self, msg: Message) -> None:
        msg_type = msg.header.msg_type
        content = msg.content
        if msg_type == "stream":
            stream = self._err if content.get("name") == "stderr" else self._out
            self._write(stream, str(content.get("text", "")))
        elif msg_type in _DISPLAY_TYPES:
            data = content.get("data")
            if isinstance(data, Mapping):
                self._display(data)
        elif msg_type == "error":
            self.show_error(content)

    def _display(self, data: Mapping[str, Any]) -> None:
        saved = self._saver.save(data) if self._saver is not None else None
        if "text/plain" in data:
            self._write(self._out, f"{data['text/plain']}\n")
        if saved is not None:
            self._write(self._err, f"kernelkit: saved {saved}\n")
        elif "text/plain" not in data:
            mime = _rich_summary(data) or ", ".join(sorted(data)) or "nothing"
            self._write(self._out, f"[{mime} output; --save-outputs DIR keeps it]\n")

    def show_error(self, content: Mapping[str, object]) -> None:
        """Print the traceback of an ``error`` message or an error ``execute_reply``."""
        self.error_shown = True
        self._write(self._err, traceback_text(content, plain=self._plain_err))

    def finish(self) -> None:
        """End a terminal's unfinished last line, so the shell prompt starts on its own
        (output to files and pipes is left exactly as the kernel wrote it)."""
        for stream in (self._out, self._err):
            if self._open_line.get(id(stream)) and is_terminal(stream):
                self._write(stream, "\n")

    def _write(self, stream: TextIO, text: str) -> None:
        if not text:
            return
        stream.write(text)
        stream.flush()
        self._open_line[id(stream)] = not text.endswith("\n")


class JsonLines:
    """``kernelkit run --json``: every message of the request as one JSON object a line
    on stdout, the IOPub messages as they come, then the ``execute_reply``.

    Each line: ``{"channel", "msg_type", "header", "parent_header", "metadata",
    "content"}`` (binary buffers are not written; ``"buffers"`` counts them).
    """

    def __init__(self, out: TextIO | None = None, *, saver: OutputSaver | None = None) -> None:
        self._out = out if out is not None else sys.stdout
        self._saver = saver

    def __call__(self, msg: Message) -> None:
        if self._saver is not None and msg.header.msg_type in _DISPLAY_TYPES:
            data = msg.content.get("data")
            if isinstance(data, Mapping):
                self._saver.save(data)
        self.write("iopub", msg)

    def write(self, channel: str, msg: Message) -> None:
        """Write one message as a JSON line."""
        line = {
            "channel": channel,
            "msg_type": msg.header.msg_type,
            "header": msg.header.to_dict(),
            "parent_header": msg.parent_header.to_dict() if msg.parent_header else {},
            "metadata": dict(msg.metadata),
            "content": dict(msg.content),
            "buffers": len(msg.buffers),
        }
        data = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
        self._out.write(data.decode() + "\n")
        self._out.flush()
