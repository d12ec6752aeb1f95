"""Learning that a kernel process exited, without polling.

On Linux (>= 5.3) a pidfd becomes readable when its process exits; the event loop
watches it with ``add_reader``, so exit is noticed the moment it happens. Our own child
is not reaped then: its status is read with ``waitid(WNOWAIT)`` and the zombie is kept
until :meth:`ExitWatch.reap`, so its pid (and process-group id) cannot be reused while we
may still signal the group. Where pidfds are unavailable a waiter thread blocks in
``waitid`` for a child; a process that is not our child (re-attached from another
launcher) is then checked with a bounded back-off, the only thing left on such systems.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Final, Protocol

from kernelkit.provisioning._procfs import PidHandle, pidfd_exited, proc_stat

__all__ = [
    "EXIT_STATUS_UNKNOWN",
    "ChildProcess",
    "ExitWatch",
    "wait_for_exits",
]

#: What :meth:`poll`/:meth:`wait` report for a process that exited but was not our child
#: (re-attached from another launcher): its status went to its real parent. No real status
#: can take this value (exit codes are 0..255, signals -1..-64).
EXIT_STATUS_UNKNOWN: Final = -256

# waitid(WNOWAIT) reads a child's status without reaping it (not on macOS: there the
# child is reaped at once, and its group id is no longer held while we may signal it).
_HAVE_WAITID = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")

# Back-off for the one case nothing event-driven covers (no pidfd, not our child).
_POLL_FIRST = 0.005
_POLL_MAX = 0.25


class ChildProcess(Protocol):
    """Our own child, as :class:`ExitWatch` knows it: a :class:`subprocess.Popen`, or a
    process started otherwise (the nanny's early kernel) that behaves as one: ``poll`` and
    ``wait`` reap it and set ``returncode``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


def _child_status(pid: int) -> int | None:
    """The status of our exited child without reaping it; None while it runs.

    Raises ChildProcessError once it has been reaped (by us or by Popen).
    """
    res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if res is None:
        return None
    return res.si_status if res.si_code == os.CLD_EXITED else -res.si_status


class ExitWatch:
    """Notices when one process exits and holds its exit status.

    ``popen`` is given for our own child (its status is known); without it the process is
    someone else's child and its status is :data:`EXIT_STATUS_UNKNOWN`. With
    ``owns_handle`` (the default), :meth:`close` closes ``handle`` too.
    """

    def __init__(
        self,
        handle: PidHandle,
        *,
        popen: ChildProcess | None,
        loop: asyncio.AbstractEventLoop,
        owns_handle: bool = True,
    ) -> None:
        self.pid = handle.pid
        self._handle = handle
        self._owns_handle = owns_handle
        self._popen = popen
        self._loop = loop
        self._reader_fd: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.exited: asyncio.Future[int] = loop.create_future()
        self._start()

    # ------------------------------------------------------------------ watching

    def _start(self) -> None:
        fd = self._handle.fd
        if fd is not None:
            try:
                self._loop.add_reader(fd, self._check)
                self._reader_fd = fd
            except NotImplementedError:  # an event loop without add_reader
                pass
            else:
                # It may have exited before the reader was registered: check once now.
                self._check()
                return
        if self._popen is not None:
            threading.Thread(
                target=self._wait_in_thread, name=f"kernelkit-exit-{self.pid}", daemon=True
            ).start()
        else:
            self._poll_later(_POLL_FIRST)

    def _wait_in_thread(self) -> None:
        with contextlib.suppress(ChildProcessError):  # reaped elsewhere: _check reads Popen
            if _HAVE_WAITID:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            elif self._popen is not None:
                self._popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            self._loop.call_soon_threadsafe(self._check)

    def _poll_later(self, delay: float) -> None:
        # Not our child and no pidfd: nothing can tell us of its exit, so look with a
        # bounded back-off (5 ms doubling to 250 ms).
        def tick() -> None:
            self._timer = None
            if not self._check():
                self._poll_later(min(delay * 2, _POLL_MAX))

        self._timer = self._loop.call_later(delay, tick)

    def _check(self) -> bool:
        """Record the exit if it happened; True once exited."""
        if self.exited.done():
            return True
        status = self._status_now()
        if status is None:
            return False
        self._stop_watching()
        self.exited.set_result(status)
        return True

    def _status_now(self) -> int | None:
        popen = self._popen
        if popen is not None:
            if popen.returncode is not None:
                return popen.returncode
            if not _HAVE_WAITID:
                return popen.poll()
            try:
                return _child_status(self.pid)
            except ChildProcessError:
                # Someone reaped it through Popen (poll/wait) or behind our back.
                return popen.returncode if popen.returncode is not None else EXIT_STATUS_UNKNOWN
        fd = self._handle.fd
        if fd is not None:
            return EXIT_STATUS_UNKNOWN if pidfd_exited(fd) else None
        st = proc_stat(self.pid)
        if (
            st is None
            or st.state == "Z"
            or (self._handle.starttime is not None and st.starttime != self._handle.starttime)
        ):
            return EXIT_STATUS_UNKNOWN
        return None

    def _stop_watching(self) -> None:
        if self._reader_fd is not None:
            self._loop.remove_reader(self._reader_fd)
            self._reader_fd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ public

    def poll(self) -> int | None:
        """The exit status if the process has exited, else None (never blocks)."""
        if self._check():
            return self.exited.result()
        return None

    async def wait(self) -> int:
        """Wait for the exit and return the status."""
        return await asyncio.shield(self.exited)

    def reap(self) -> None:
        """Collect our exited child's zombie (freeing its pid). Call only after exit."""
        if self._popen is not None and self.exited.done():
            # Returns at once: the process has exited; this sets Popen.returncode too.
            self._popen.wait()

    def close(self) -> None:
        """Stop watching and release the pidfd if owned (the process itself is left alone)."""
        self._stop_watching()
        if not self.exited.done():
            self.exited.cancel()
        if self._owns_handle:
            self._handle.close()


async def wait_for_exits(handles: Sequence[PidHandle], *, timeout: float) -> list[PidHandle]:
    """Wait up to ``timeout`` seconds for every process in ``handles`` to exit, each exit
    an event (pidfd); returns the handles whose process still runs. The handles stay open.
    """
    loop = asyncio.get_running_loop()
    watches = [ExitWatch(h, popen=None, loop=loop, owns_handle=False) for h in handles]
    try:
        pending = [w.exited for w in watches if not w.exited.done()]
        if pending and timeout > 0:
            await asyncio.wait(pending, timeout=timeout)
        return [h for h, w in zip(handles, watches, strict=True) if not w.exited.done()]
    finally:
        for w in watches:
            w.close()
