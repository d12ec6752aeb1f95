"""A control group per sandbox, for its memory and process limits (Linux).

cgroup v2 (the unified hierarchy with the ``memory`` and ``pids`` controllers) where it
is writable, else the v1 ``memory`` and ``pids`` hierarchies, each where writable; a limit
no control group can hold is left to ``setrlimit`` by the caller (:attr:`Cgroup.holds`).

The processes are put in the group by the launch command itself, before it execs the
sandbox (:attr:`Cgroup.procs_files`), so nothing the kernel starts can escape it. The
group also counts what happened: :meth:`Cgroup.limit_reached` reads the kernel's own
event counters (``oom_kill``, pids ``max``), not guesses from exit codes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from kernelkit.provisioning._sandbox_options import format_bytes

__all__ = ["CGROUP_ROOT", "Cgroup"]

log = logging.getLogger("kernelkit.provisioning")

CGROUP_ROOT = Path("/sys/fs/cgroup")
_PARENT = "kernelkit"


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def _counter(path: Path, key: str) -> int:
    """The value of ``key`` in a flat-keyed cgroup file (``oom_kill 1``); 0 if absent."""
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def _v2_root() -> Path | None:
    """The cgroup v2 mount whose controllers include memory and pids, if any."""
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        try:
            controllers = (root / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        if "memory" in controllers and "pids" in controllers:
            return root
    return None


# Groups of this process that a cleanup could not remove yet (a group stays busy for a
# moment after its last process was reaped); the next create() tries again.
_left: set[Path] = set()


def _sweep() -> None:
    for path in list(_left):
        with contextlib.suppress(OSError):
            path.rmdir()
            _left.discard(path)
        if not path.exists():
            _left.discard(path)


def _make_dir(parent: Path, name: str) -> Path | None:
    try:
        parent.mkdir(exist_ok=True)
        _sweep()
        path = parent / name
        # Left by a process that died before its cleanup: reuse it if nothing runs in it.
        path.mkdir(exist_ok=True)
        if (path / "cgroup.procs").read_text().strip():
            return None
    except OSError:
        return None
    return path


@dataclass
class Cgroup:
    """The control group(s) of one sandbox; :meth:`create` makes them."""

    version: int
    dirs: dict[str, Path]  # "memory" / "pids" (v1) or "unified" (v2) -> directory
    memory: int | None
    processes: int | None

    @classmethod
    def create(cls, name: str, *, memory: int | None, processes: int | None) -> Cgroup | None:
        """A new group named ``name`` holding the limits it can; None when no control
        group is writable here (not root and nothing delegated, or not Linux)."""
        if memory is None and processes is None:
            return None
        root = _v2_root()
        if root is not None:
            group = cls._create_v2(root, name, memory=memory, processes=processes)
            if group is not None:
                return group
        return cls._create_v1(name, memory=memory, processes=processes)

    @classmethod
    def _create_v2(
        cls, root: Path, name: str, *, memory: int | None, processes: int | None
    ) -> Cgroup | None:
        parent = root / _PARENT
        # Controllers reach a child only when every ancestor enables them for its children.
        if not _write(root / "cgroup.subtree_control", "+memory +pids"):
            return None
        path = _make_dir(parent, name)
        if path is None or not _write(parent / "cgroup.subtree_control", "+memory +pids"):
            return None
        group = cls(2, {"unified": path}, None, None)
        if memory is not None and _write(path / "memory.max", str(memory)):
            _write(path / "memory.swap.max", "0")
            group.memory = memory
        if processes is not None and _write(path / "pids.max", str(processes)):
            group.processes = processes
        return group

    @classmethod
    def _create_v1(cls, name: str, *, memory: int | None, processes: int | None) -> Cgroup | None:
        group = cls(1, {}, None, None)
        if memory is not None:
            path = _make_dir(CGROUP_ROOT / "memory" / _PARENT, name)
            if path is not None and _write(path / "memory.limit_in_bytes", str(memory)):
                # Swap counts too where the kernel accounts it (memsw may be absent).
                _write(path / "memory.memsw.limit_in_bytes", str(memory))
                group.dirs["memory"] = path
                group.memory = memory
            elif path is not None:
                _rmdir(path)
        if processes is not None:
            path = _make_dir(CGROUP_ROOT / "pids" / _PARENT, name)
            if path is not None and _write(path / "pids.max", str(processes)):
                group.dirs["pids"] = path
                group.processes = processes
            elif path is not None:
                _rmdir(path)
        return group if group.dirs else None

    # ------------------------------------------------------------------ use

    @property
    def holds(self) -> frozenset[str]:
        """The limits this group enforces: "memory", "processes"."""
        held = set()
        if self.memory is not None:
            held.add("memory")
        if self.processes is not None:
            held.add("processes")
        return frozenset(held)

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid to, to join the group."""
        return [path / "cgroup.procs" for path in self.dirs.values()]

    def _dir(self, controller: str) -> Path | None:
        return self.dirs.get("unified") or self.dirs.get(controller)

    def memory_reached(self) -> bool:
        """True once the kernel's OOM killer acted in this group."""
        path = self._dir("memory")
        if path is None or self.memory is None:
            return False
        if self.version == 2:
            return _counter(path / "memory.events", "oom_kill") > 0
        return _counter(path / "memory.oom_control", "oom_kill") > 0

    def processes_reached(self) -> bool:
        """True once a fork or clone in this group was refused at the process limit."""
        path = self._dir("pids")
        return (
            path is not None
            and self.processes is not None
            and (_counter(path / "pids.events", "max") > 0)
        )

    def limit_reached(self) -> str | None:
        """Which limit was reached, in words ("memory limit 512 MiB reached"), or None."""
        if self.memory is not None and self.memory_reached():
            return f"memory limit {format_bytes(self.memory)} reached"
        if self.processes is not None and self.processes_reached():
            return f"process limit {self.processes} reached"
        return None

    def pids(self) -> list[int]:
        """The processes in the group now."""
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in procs.read_text().split())
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL every process in the group (``cgroup.kill`` where the kernel has it)."""
        unified = self.dirs.get("unified")
        if unified is not None and _write(unified / "cgroup.kill", "1"):
            return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the group's directories (once empty; a group still in use stays and
        the kernel removes nothing that runs)."""
        for path in self.dirs.values():
            _rmdir(path)
        self.dirs = {}


def _rmdir(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        try:
            path.rmdir()
        except OSError as exc:
            # EBUSY: the last process was just reaped and the kernel has not let go of
            # the group yet. The next sandbox's create() removes it; never worth
            # failing a cleanup for.
            _left.add(path)
            log.debug("could not remove control group %s: %s", path, exc)
