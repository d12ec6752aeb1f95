"""A local kernel's process tree: its process group, the descendants pinned so far, and
how to signal and stop them all, for a child of ours or a re-attached kernel."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelkit._errors import ProvisioningError
from kernelkit.provisioning._exitwatch import ExitWatch, wait_for_exits
from kernelkit.provisioning._ports import PORT_MODES, PortMode
from kernelkit.provisioning._procfs import PidHandle, ProcStat, descendants, open_pid, proc_stat
from kernelkit.provisioning._reaper import tagged_processes

__all__ = [
    "ProcessTree",
    "ReattachInfo",
    "group_members",
]


class ProcessTree:
    """The kernel process (watched by ``watch``), its process group ``pgid``, and the
    descendants pinned so far (pidfds: they can be signalled after re-parenting).

    ``reattached``: the kernel is not our child (its exit status is unknown, and once it
    is gone its pgid may be reused: only members proven to belong are signalled).

    ``tag``: the launch's ``KERNELKIT_TREE`` tag (see ``_reaper``). With it, descendants
    that were re-parented before they could be pinned (a ``setsid`` child of a kernel that
    crashed, a double-forked daemon) are found too, also after the kernel has exited.
    """

    def __init__(
        self,
        watch: ExitWatch,
        *,
        pid: int,
        pgid: int | None,
        starttime: int | None,
        reattached: bool = False,
        tag: str | None = None,
    ) -> None:
        self.watch = watch
        self.pid = pid
        self.pgid = pgid
        self.starttime = starttime
        self.reattached = reattached
        self.tag = tag
        self._descendants: dict[int, PidHandle] = {}

    def signal_group(self, signum: int) -> None:
        """Signal the kernel's process group, if that is still safe."""
        if self.pgid is None:
            return
        if self.reattached and self.watch.poll() is not None:
            # Not our child: its pgid may be free for reuse once it is gone. Signal the
            # members we can prove belong to it instead.
            for st in group_members(self.pgid, since=self.starttime):
                member = open_pid(st.pid, starttime=st.starttime)
                if member is not None:
                    member.send_signal(signum)
                    member.close()
            return
        # Our child stays a zombie until cleanup, so its pgid cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def pin_descendants(self) -> None:
        """Pin every current descendant, so they can be signalled even after re-parenting:
        those below the kernel while it runs, and every process with the launch's tag."""
        found = descendants(self.pid) if self.watch.poll() is None else []
        if self.tag is not None:
            found.extend(tagged_processes(self.tag, since=self.starttime))
        for st in found:
            if st.pid != self.pid and st.pid not in self._descendants:
                handle = open_pid(st.pid, starttime=st.starttime)
                if handle is not None:
                    self._descendants[st.pid] = handle

    def signal_all(self, signum: int) -> None:
        """Signal the group and every descendant pinned so far (pinning the current ones)."""
        self.pin_descendants()
        self.signal_group(signum)
        for handle in self._descendants.values():
            handle.send_signal(signum)

    def close(self) -> None:
        """Let go of the pinned descendants (their pidfds)."""
        for handle in self._descendants.values():
            handle.close()
        self._descendants.clear()

    async def stop_leftovers(self, *, grace: float) -> None:
        """The kernel has exited: stop what it left running.

        Pinned descendants still running get SIGTERM (with the rest of the group), up to
        ``grace`` seconds to exit (each exit an event on its pidfd), then SIGKILL; whatever
        else is still in the group gets SIGKILL.
        """
        if self.tag is not None:
            self.pin_descendants()  # what left before anyone pinned it (after a crash)
        running = [h for h in self._descendants.values() if h.running()]
        if running:
            self.signal_group(signal.SIGTERM)
            for handle in running:
                handle.send_signal(signal.SIGTERM)
            for handle in await wait_for_exits(running, timeout=grace):
                handle.send_signal(signal.SIGKILL)
        self.signal_group(signal.SIGKILL)


def group_members(pgid: int, *, since: int | None) -> list[ProcStat]:
    """Live processes in process group ``pgid`` that started no earlier than ``since``."""
    found: list[ProcStat] = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if (
                    st is not None
                    and st.pgrp == pgid
                    and st.state != "Z"
                    and (since is None or st.starttime >= since)
                ):
                    found.append(st)
    return found


@dataclass(frozen=True, slots=True)
class ReattachInfo:
    """What a LocalProvisioner saved for another one to re-attach to its kernel (beyond
    the base provisioner's kernel id and connection info)."""

    pid: int | None
    pgid: int | None
    starttime: int | None
    connection_file: Path | None
    log_file: Path | None
    port_mode: PortMode | None
    tree_tag: str | None = None

    @classmethod
    def parse(cls, info: Mapping[str, Any]) -> ReattachInfo:
        """Read and check saved provisioner info.

        Raises:
            ProvisioningError: a field has the wrong type (the message names it).
        """
        pid = info.get("pid")
        pgid = info.get("pgid", pid)
        starttime = info.get("starttime")
        for name, value in (("pid", pid), ("pgid", pgid), ("starttime", starttime)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ProvisioningError(f"provisioner info: {name!r} must be an integer")
        for name in ("connection_file", "log_file"):
            value = info.get(name)
            if value is not None and not isinstance(value, str):
                raise ProvisioningError(f"provisioner info: {name!r} must be a path string")
        tag = info.get("tree_tag")
        if tag is not None and not isinstance(tag, str):
            raise ProvisioningError("provisioner info: 'tree_tag' must be a string")
        cf, lf = info.get("connection_file"), info.get("log_file")
        mode = info.get("port_mode")
        known: dict[str, PortMode] = {m: m for m in PORT_MODES}
        return cls(
            pid=pid,
            pgid=pgid,
            starttime=starttime,
            connection_file=Path(cf) if cf else None,
            log_file=Path(lf) if lf else None,
            port_mode=known.get(mode) if isinstance(mode, str) else None,
            tree_tag=tag,
        )
