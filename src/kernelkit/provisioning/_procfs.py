"""What /proc says about a process, and signalling processes without hitting a reused pid.

Linux only; on other systems every lookup answers "unknown" and callers fall back to
plain ``os.kill``/``os.killpg``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from dataclasses import dataclass

__all__ = [
    "PidHandle",
    "ProcStat",
    "descendants",
    "open_pid",
    "pidfd_exited",
    "proc_stat",
]

_PROC = "/proc"
HAVE_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/<pid>/stat we use."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    starttime: int  # clock ticks after boot: with the pid, identifies a process for good


def proc_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None if the process is gone or /proc is unavailable."""
    # os.open/os.read: half the cost of pathlib or open() here, and /proc walks read
    # one such file per process on the machine.
    try:
        fd = os.open(f"{_PROC}/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=fields[0].decode(),
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            session=int(fields[3]),
            starttime=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def _children_map() -> dict[int, list[ProcStat]]:
    """ppid -> the live processes it is parent of, from one scan of /proc.

    This kernel may lack CONFIG_PROC_CHILDREN (no /proc/<pid>/task/<tid>/children), so
    scan every process once: a few milliseconds for a few hundred processes.
    """
    children: dict[int, list[ProcStat]] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return children
    for name in entries:
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and st.state != "Z":
            children.setdefault(st.ppid, []).append(st)
    return children


def descendants(pid: int) -> list[ProcStat]:
    """Every live process below ``pid`` (children, their children, ...), parents first.

    A process whose parent exited has been re-parented (to init or a subreaper) and is no
    longer a descendant: nothing can find it from here.
    """
    tree = _children_map()
    found: list[ProcStat] = []
    queue = [pid]
    seen = {pid}
    while queue:
        for child in tree.get(queue.pop(0), ()):
            if child.pid not in seen:
                seen.add(child.pid)
                found.append(child)
                queue.append(child.pid)
    return found


def pidfd_exited(fd: int) -> bool:
    """True once the process behind pidfd ``fd`` has exited (the pidfd is readable).

    poll, not select: select cannot take descriptors past FD_SETSIZE (1024), which a
    server holding many kernels reaches.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class PidHandle:
    """A process pinned by a pidfd, so a signal can never reach a later process that
    reused its pid. Without pidfd support it falls back to ``os.kill`` after checking the
    start time again.
    """

    __slots__ = ("_fd", "pid", "starttime")

    def __init__(self, pid: int, starttime: int | None, fd: int | None) -> None:
        self.pid = pid
        self.starttime = starttime
        self._fd = fd

    @property
    def fd(self) -> int | None:
        """The pidfd (readable once the process has exited), or None."""
        return self._fd

    def running(self) -> bool:
        """True while the process has not exited (a zombie counts as exited)."""
        if self._fd is not None:
            return not pidfd_exited(self._fd)
        st = proc_stat(self.pid)
        return (
            st is not None
            and st.state != "Z"
            and (self.starttime is None or st.starttime == self.starttime)
        )

    def send_signal(self, signum: int) -> bool:
        """Deliver ``signum``; False if the process is already gone."""
        try:
            if self._fd is not None:
                signal.pidfd_send_signal(self._fd, signum)
            else:
                st = proc_stat(self.pid)
                if self.starttime is not None and (st is None or st.starttime != self.starttime):
                    return False
                os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        """Release the pidfd."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def open_pid(pid: int, *, starttime: int | None = None) -> PidHandle | None:
    """Pin ``pid`` if it is still the process that started at ``starttime``.

    Returns None when the process is gone or the pid now belongs to another process.
    ``starttime`` None accepts whatever process has the pid now.
    """
    fd: int | None = None
    if HAVE_PIDFD:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError:
            fd = None  # e.g. ENOSYS under an old kernel or a seccomp filter
    # Check identity after pinning: if the pid was reused before pidfd_open, the start
    # time differs; after pidfd_open it can no longer change under us.
    st = proc_stat(pid)
    if starttime is not None and st is not None and st.starttime != starttime:
        if fd is not None:
            os.close(fd)
        return None
    if st is None and fd is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 0)
            return PidHandle(pid, starttime, None)
        return None
    return PidHandle(pid, st.starttime if st is not None else starttime, fd)
