"""Being told when a file changes: inotify on Linux, a bounded back-off elsewhere.

A kernel that writes its chosen ports back into its connection file (ipykernel) does so
by unlinking and re-creating it, in more than one write. So we watch the *directory* for
writes to that name (close-after-write, rename-into-place, and each modify), and the
caller re-reads the file on every event; a half-written file simply fails to parse and
the next event brings the rest.

One inotify instance serves every watch on one event loop (the per-user limit on
instances is 128 by default; a process launching many kernels at once must not run out).
It is closed when its last watch is cancelled, so nothing stays open between launches.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "FileWatch",
    "watch_file",
]

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_ONLYDIR
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name

# The fallback where inotify is missing: look at the file's stat with a back-off.
_POLL_FIRST = 0.002
_POLL_MAX = 0.1

Callback = Callable[[], None]


class _Libc:
    """The three inotify calls, through ctypes (no third-party dependency)."""

    def __init__(self) -> None:
        # The running program's own symbols include libc's: find_library("c") would run
        # ldconfig (a process, and a regex over its output) on every launch's first watch.
        libc = ctypes.CDLL(None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int
        self.rm_watch = libc.inotify_rm_watch
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self.rm_watch.restype = ctypes.c_int


_libc: _Libc | None = None
_libc_failed = not sys.platform.startswith("linux")


def _get_libc() -> _Libc | None:
    global _libc, _libc_failed
    if _libc is None and not _libc_failed:
        try:
            _libc = _Libc()
        except (OSError, AttributeError):  # no libc symbol: a libc without inotify
            _libc_failed = True
    return _libc


class _Inotify:
    """One inotify instance on one event loop, shared by all watches there."""

    def __init__(self, loop: asyncio.AbstractEventLoop, libc: _Libc) -> None:
        fd = libc.init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._fd = fd
        self._libc = libc
        self._loop = loop
        # wd -> (directory, {file name: {watch: callback}})
        self._dirs: dict[int, tuple[bytes, dict[bytes, dict[FileWatch, Callback]]]] = {}
        self._wd_of: dict[bytes, int] = {}
        try:
            loop.add_reader(fd, self._on_readable)
        except BaseException:
            os.close(fd)
            raise

    def add(self, watch: FileWatch, directory: bytes, name: bytes, callback: Callback) -> None:
        wd = self._wd_of.get(directory)
        if wd is None:
            wd = self._libc.add_watch(self._fd, directory, _MASK)
            if wd < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), os.fsdecode(directory))
            self._wd_of[directory] = wd
            self._dirs.setdefault(wd, (directory, {}))
        self._dirs[wd][1].setdefault(name, {})[watch] = callback

    def remove(self, watch: FileWatch, directory: bytes, name: bytes) -> None:
        wd = self._wd_of.get(directory)
        if wd is None:
            return
        names = self._dirs[wd][1]
        watchers = names.get(name, {})
        watchers.pop(watch, None)
        if not watchers:
            names.pop(name, None)
        if not names:
            del self._dirs[wd]
            del self._wd_of[directory]
            self._libc.rm_watch(self._fd, wd)  # fails harmlessly if the dir is gone
        if not self._dirs:
            self.close()

    @property
    def empty(self) -> bool:
        return not self._dirs

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            if not self._loop.is_closed():
                self._loop.remove_reader(fd)
            os.close(fd)
            _instances.pop(self._loop, None)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        to_call: list[Callback] = []
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & _IN_Q_OVERFLOW:
                # Events were lost: tell everyone to look again.
                for _, names in self._dirs.values():
                    for watchers in names.values():
                        to_call.extend(watchers.values())
                continue
            entry = self._dirs.get(wd)
            if entry is None or mask & _IN_IGNORED:
                continue
            to_call.extend(entry[1].get(name, {}).values())
        for callback in dict.fromkeys(to_call):
            callback()


_instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inotify] = (
    weakref.WeakKeyDictionary()
)


class FileWatch:
    """A watch on one file path; call :meth:`cancel` when done."""

    def __init__(self, path: Path, callback: Callback, loop: asyncio.AbstractEventLoop) -> None:
        self._dir = os.fsencode(path.parent)
        self._name = os.fsencode(path.name)
        self._path = path
        self._callback = callback
        self._loop = loop
        self._inotify: _Inotify | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last: tuple[int, int, int] | None = None
        self._cancelled = False
        self.event_driven = False
        libc = _get_libc()
        if libc is not None:
            with contextlib.suppress(OSError):  # e.g. out of inotify instances or watches
                inotify = _instances.get(loop)
                if inotify is None:
                    inotify = _Inotify(loop, libc)
                    _instances[loop] = inotify
                try:
                    inotify.add(self, self._dir, self._name, callback)
                except OSError:
                    if inotify.empty:
                        inotify.close()
                    raise
                self._inotify = inotify
                self.event_driven = True
        if not self.event_driven:
            self._last = self._stat()
            self._schedule(_POLL_FIRST)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _schedule(self, delay: float) -> None:
        # No inotify here: compare the file's stat after a bounded back-off (2 ms doubling
        # to 100 ms). Nothing event-driven exists for files on such systems.
        def tick() -> None:
            self._timer = None
            now = self._stat()
            changed = now != self._last
            self._last = now
            if changed:
                self._callback()
            if self._timer is None and not self._cancelled:
                self._schedule(_POLL_FIRST if changed else min(delay * 2, _POLL_MAX))

        self._timer = self._loop.call_later(delay, tick)

    def cancel(self) -> None:
        """Stop watching (idempotent)."""
        self._cancelled = True
        if self._inotify is not None:
            inotify, self._inotify = self._inotify, None
            inotify.remove(self, self._dir, self._name)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def watch_file(path: str | os.PathLike[str], callback: Callback) -> FileWatch:
    """Call ``callback`` (on the running loop) whenever ``path`` may have changed.

    The directory must exist. The callback gets no arguments and should re-read the file.
    """
    return FileWatch(Path(path), callback, asyncio.get_running_loop())
