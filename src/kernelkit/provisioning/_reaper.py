"""Finding every process a kernel started, even those that left its group and parentage.

Two mechanisms, for two owners:

- **A tag in the environment (any launcher).** The kernel is started with
  ``KERNELKIT_TREE=<tag>`` (a fresh tag per launch); everything it starts inherits it,
  including a ``setsid`` child and a double-forked daemon that init (or a subreaper) has
  adopted. :func:`tagged_processes` finds them in ``/proc/<pid>/environ`` (which keeps the
  environment the process was started with, whatever it does to ``os.environ`` later).
  Out of reach: a process that was exec'd with a cleared environment *and* left the
  kernel's group and parentage, or one running as another user.
- **A child subreaper (a process that owns nothing else).** With
  ``PR_SET_CHILD_SUBREAPER`` a process adopts every orphan below it instead of init, so
  no descendant can leave its tree, and it must reap them (:func:`reap_orphans`). The
  nanny (``python -m kernelkit.nanny``) is one, beside each kernel.

Why the user's process is not made a subreaper: every orphan of *anything* it started
(a library's helper, a shell pipeline) would then be re-parented to it and stay a zombie
until it reaps it, and reaping with ``waitpid(-1)`` would steal exit statuses from
``subprocess``, asyncio's child watchers and ``ExitWatch``. The attribute is also
inherited by nothing and cannot be scoped to one kernel. A small process per kernel that
is the subreaper (the nanny) has none of these problems; the local path without a nanny
uses the tag, which changes nothing for the user's process. A per-kernel cgroup would
also find everything, but needs a writable hierarchy (root or delegation) and a way to
enter it before exec; the tag works for any user and covers the escapes seen in practice.
"""

from __future__ import annotations

import contextlib
import os

from kernelkit.provisioning._procfs import ProcStat, proc_stat

# Re-exported: the tag and the subreaper, light enough for the nanny's first moment.
from kernelkit.provisioning._treetag import (
    TREE_ENV,
    new_tree_tag,
    set_child_subreaper,
    tag_environ,
)

__all__ = [
    "TREE_ENV",
    "new_tree_tag",
    "reap_orphans",
    "set_child_subreaper",
    "tag_environ",
    "tagged_processes",
]

_PROC = "/proc"


def _has_tag(pid: int, needle: bytes) -> bool:
    try:
        fd = os.open(f"{_PROC}/{pid}/environ", os.O_RDONLY)
    except OSError:
        return False  # gone, or another user's process (not ours to find)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return False
    finally:
        os.close(fd)
    return needle in b"".join(chunks).split(b"\0")


def tagged_processes(tag: str, *, since: int | None = None) -> list[ProcStat]:
    """Live processes started with ``KERNELKIT_TREE=<tag>`` (no earlier than ``since``,
    in clock ticks after boot): the kernel and everything it started, wherever they went.

    Linux only; elsewhere (no /proc) the answer is empty.
    """
    needle = f"{TREE_ENV}={tag}".encode()
    me = os.getpid()
    found: list[ProcStat] = []
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return found
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        st = proc_stat(pid)
        if st is None or st.state == "Z" or (since is not None and st.starttime < since):
            continue
        if _has_tag(pid, needle):
            found.append(st)
    return found


def reap_orphans(keep: int | None = None) -> list[tuple[int, int]]:
    """Reap every exited child except ``keep`` (whose status its own watcher reads);
    returns ``(pid, raw status)`` for each reaped one. For a subreaper only."""
    reaped: list[tuple[int, int]] = []
    with contextlib.suppress(ChildProcessError):
        while True:
            res = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if res is None:
                break
            if res.si_pid == keep:
                # Leave it for its watcher; reap the others one by one.
                others = [
                    pid for pid in _children_of(os.getpid()) if pid != keep and _is_zombie(pid)
                ]
                for pid in others:
                    with contextlib.suppress(ChildProcessError):
                        _, status = os.waitpid(pid, os.WNOHANG)
                        reaped.append((pid, status))
                break
            _, status = os.waitpid(res.si_pid, 0)
            reaped.append((res.si_pid, status))
    return reaped


def _children_of(ppid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for name in os.listdir(_PROC):
            if name.isdigit():
                st = proc_stat(int(name))
                if st is not None and st.ppid == ppid:
                    kids.append(st.pid)
    return kids


def _is_zombie(pid: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st.state == "Z"
