"""Capturing a kernel's stdout and stderr: a bounded ring of lines, plus an optional log.

The kernel writes into pipes; the event loop reads them when they are readable
(``add_reader``), never by polling. Nothing reaches the parent's terminal unless an
``echo`` stream is given. The ring keeps the last lines within a line count and a byte
budget, so a kernel printing without end costs bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DEFAULT_OUTPUT_BYTES",
    "DEFAULT_OUTPUT_LINES",
    "OutputCapture",
    "file_tail",
]

#: Lines the ring keeps by default.
DEFAULT_OUTPUT_LINES = 1000
#: Bytes (of decoded text) the ring keeps by default.
DEFAULT_OUTPUT_BYTES = 256 * 1024

# A "line" without a newline is cut here, so one endless line cannot grow the buffer.
_MAX_LINE = 4096
_READ_SIZE = 65536
_DRAIN_READS = 64


class OutputCapture:
    """Reads a kernel's output pipes into a ring buffer (and a log file, and an echo).

    Create the pipes with :meth:`new_pipe` (the write end goes to the child), start
    reading with :meth:`attach`, and :meth:`close` at the end. The ring survives
    :meth:`close` so the last lines of a dead kernel stay available.
    """

    def __init__(
        self,
        *,
        max_lines: int = DEFAULT_OUTPUT_LINES,
        max_bytes: int = DEFAULT_OUTPUT_BYTES,
        log_file: str | os.PathLike[str] | None = None,
        echo: BinaryIO | None = None,
    ) -> None:
        self._lines: deque[tuple[str, str]] = deque()
        self._bytes = 0
        self._max_lines = max(1, max_lines)
        self._max_bytes = max(1, max_bytes)
        self._partial: dict[str, bytearray] = {}
        self._readers: dict[int, str] = {}  # read fd -> stream name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log_path = Path(log_file) if log_file is not None else None
        self._log: BinaryIO | None = None
        self._echo = echo

    @property
    def log_file(self) -> Path | None:
        """Where the raw output is also appended, if anywhere."""
        return self._log_path

    @staticmethod
    def new_pipe() -> tuple[int, int]:
        """A close-on-exec pipe (read end, write end); Popen dups the write end into place."""
        return os.pipe2(os.O_CLOEXEC) if hasattr(os, "pipe2") else os.pipe()

    def attach(self, loop: asyncio.AbstractEventLoop, streams: Iterable[tuple[str, int]]) -> None:
        """Start reading each ``(name, read_fd)``; the fds now belong to this capture."""
        self._loop = loop
        if self._log_path is not None and self._log is None:
            # Append, so restarts of one kernel share one log. The path is the caller's.
            self._log = open(self._log_path, "ab", buffering=0)  # noqa: SIM115
        for name, fd in streams:
            os.set_blocking(fd, False)
            self._readers[fd] = name
            self._partial.setdefault(name, bytearray())
            loop.add_reader(fd, self._on_readable, fd)

    # ------------------------------------------------------------------ reading

    def _on_readable(self, fd: int) -> None:
        self._read(fd, once=True)

    def _read(self, fd: int, *, once: bool) -> None:
        name = self._readers.get(fd)
        if name is None:
            return
        # Draining is bounded too: a grandchild may keep the pipe open and keep writing.
        for _ in range(1 if once else _DRAIN_READS):
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""  # treat a broken pipe like EOF
            if not chunk:
                self._detach(fd)
                return
            self._feed(name, chunk)

    def _feed(self, name: str, chunk: bytes) -> None:
        if self._log is not None:
            try:
                self._log.write(chunk)
            except OSError:
                # A full disk must not kill the kernel's capture; stop logging instead.
                self._close_log()
        if self._echo is not None:
            with contextlib.suppress(OSError, ValueError):  # echo is best effort
                self._echo.write(chunk)
                self._echo.flush()
        buf = self._partial[name]
        buf += chunk
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            self._add(name, bytes(buf[start:end]))
            start = end + 1
        del buf[:start]
        while len(buf) > _MAX_LINE:
            self._add(name, bytes(buf[:_MAX_LINE]))
            del buf[:_MAX_LINE]

    def _add(self, name: str, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self._lines.append((name, line))
        self._bytes += len(line) + 1
        while len(self._lines) > self._max_lines or (
            self._bytes > self._max_bytes and len(self._lines) > 1
        ):
            _, dropped = self._lines.popleft()
            self._bytes -= len(dropped) + 1

    def _detach(self, fd: int) -> None:
        name = self._readers.pop(fd, None)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)
        os.close(fd)
        if name is not None and name not in self._readers.values():
            self._flush_partial(name)

    def _flush_partial(self, name: str) -> None:
        buf = self._partial.get(name)
        if buf:
            self._add(name, bytes(buf))
            buf.clear()

    def _close_log(self) -> None:
        if self._log is not None:
            log, self._log = self._log, None
            with contextlib.suppress(OSError):
                log.close()

    # ------------------------------------------------------------------ public

    def drain(self) -> None:
        """Read everything the pipes hold right now (after an exit, before reporting it)."""
        for fd in list(self._readers):
            self._read(fd, once=False)

    def tail(self, n: int = 20, *, stream: str | None = None) -> list[str]:
        """The last ``n`` complete lines (and any unterminated last line), oldest first."""
        if n <= 0:
            return []
        lines = [line for s, line in self._lines if stream is None or s == stream]
        for name, buf in self._partial.items():
            if buf and (stream is None or name == stream):
                lines.append(bytes(buf).decode("utf-8", "replace").rstrip("\r"))
        return lines[-n:]

    @property
    def attached(self) -> bool:
        """True while some pipe is still being read."""
        return bool(self._readers)

    def close(self) -> None:
        """Read what is left, stop reading, close the pipes and the log (the ring stays)."""
        self.drain()
        for fd in list(self._readers):
            self._detach(fd)
        for name in list(self._partial):
            self._flush_partial(name)
        self._close_log()


def file_tail(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of a log file (its last 64 KiB read; none if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:] if n > 0 else []
