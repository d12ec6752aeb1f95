"""Running kernels as ``kernelkit ps``, ``stop``, ``interrupt`` and ``--existing`` see them.

A running kernel is a connection file ``kernel-<id>.json`` in Jupyter's runtime
directory. The kernelkit commands that start a kernel (``run``, ``start``, ``console``)
also write a record beside it, ``kernelkit-<id>.json`` (not ``kernel-*``, so tools that
pick "the newest kernel-*.json" never take it for a connection file): the kernel type,
the kernel's process (pid and start time, so a reused pid is not mistaken for it), the
owning kernelkit process, when it started. Kernels started by anything else have only
their connection file; ``ps`` asks them directly whether they live.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kernelkit._jupyterpaths import jupyter_runtime_dir

__all__ = [
    "KernelRecord",
    "RunningKernel",
    "UnknownKernel",
    "forget_kernel",
    "pid_alive",
    "record_kernel",
    "resolve_kernel",
    "runtime_kernels",
    "wait_pid_exit",
]

_RECORD_PREFIX = "kernelkit-"
_CONNECTION_PREFIX = "kernel-"


def runtime_dir() -> Path:
    """Jupyter's runtime directory (where connection files live)."""
    return Path(jupyter_runtime_dir())


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of a process (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])  # fields 3 and 22 overall
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _starttime(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """True while process ``pid`` runs (and, when ``starttime`` is given, is still the
    process that had it: a pid reused by another process is not alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, but another user's
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc here: the signal test is all we have
    state, now = stat
    # A zombie has exited (its parent has not reaped it yet).
    return state != "Z" and (starttime is None or now == starttime)


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for process ``pid`` to exit; True once it has.

    Uses a pidfd (woken by the exit itself) where the system has them."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        # No pidfd here: check in bounded steps (rare: Linux < 5.3 or not Linux).
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class KernelRecord:
    """What a kernelkit command wrote about a kernel it started."""

    kernel_id: str
    kernel_type: str
    connection_file: str
    owner_pid: int
    owner_command: str
    started: float
    kernel_pid: int | None = None
    kernel_starttime: int | None = None
    interrupt_mode: str = "signal"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelRecord:
        """Raises: KeyError, TypeError, ValueError on a malformed record."""
        kernel_pid = d.get("kernel_pid")
        starttime = d.get("kernel_starttime")
        return cls(
            kernel_id=str(d["kernel_id"]),
            kernel_type=str(d["kernel_type"]),
            connection_file=str(d["connection_file"]),
            owner_pid=int(d["owner_pid"]),
            owner_command=str(d.get("owner_command", "")),
            started=float(d["started"]),
            kernel_pid=None if kernel_pid is None else int(kernel_pid),
            kernel_starttime=None if starttime is None else int(starttime),
            interrupt_mode=str(d.get("interrupt_mode", "signal")),
        )


def record_path(kernel_id: str, directory: Path | None = None) -> Path:
    """Where the record of ``kernel_id`` lives."""
    return (directory or runtime_dir()) / f"{_RECORD_PREFIX}{kernel_id}.json"


def record_kernel(
    *,
    kernel_id: str,
    kernel_type: str,
    connection_file: Path,
    command: str,
    kernel_pid: int | None,
    interrupt_mode: str,
) -> Path | None:
    """Write (or rewrite, after a restart) the record of a kernel this process started.

    Returns its path, or None when it could not be written (``ps`` then still shows the
    kernel from its connection file: the record only adds detail).
    """
    record = {
        "kernel_id": kernel_id,
        "kernel_type": kernel_type,
        "connection_file": str(connection_file),
        "owner_pid": os.getpid(),
        "owner_command": command,
        "started": time.time(),
        "kernel_pid": kernel_pid,
        "kernel_starttime": None if kernel_pid is None else _starttime(kernel_pid),
        "interrupt_mode": interrupt_mode,
    }
    path = record_path(kernel_id, connection_file.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(record) + b"\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return path


def forget_kernel(record: Path | None) -> None:
    """Remove a record (the kernel it describes is gone); a missing one is fine."""
    if record is not None:
        with contextlib.suppress(FileNotFoundError):
            record.unlink()


@dataclass(frozen=True)
class RunningKernel:
    """A connection file in the runtime directory, with its record when there is one."""

    kernel_id: str
    connection_file: Path
    record: KernelRecord | None
    record_file: Path | None
    mtime: float

    @property
    def started(self) -> float:
        return self.record.started if self.record is not None else self.mtime

    @property
    def process_gone(self) -> bool:
        """True when the record names a kernel process that no longer runs."""
        r = self.record
        return (
            r is not None
            and r.kernel_pid is not None
            and not pid_alive(r.kernel_pid, r.kernel_starttime)
        )

    @property
    def owner_alive(self) -> bool:
        r = self.record
        return r is not None and pid_alive(r.owner_pid)


def _read_record(path: Path) -> KernelRecord | None:
    try:
        return KernelRecord.from_dict(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None  # unreadable or malformed: shown from the connection file alone


def runtime_kernels(directory: Path | None = None) -> tuple[list[RunningKernel], list[Path]]:
    """The connection files in the runtime directory (oldest first), and the records
    whose connection file is gone (left by a command that was killed)."""
    directory = directory or runtime_dir()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    kernels = []
    seen_records = set()
    for name in names:
        if not (name.startswith(_CONNECTION_PREFIX) and name.endswith(".json")):
            continue
        kernel_id = name[len(_CONNECTION_PREFIX) : -len(".json")]
        path = directory / name
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue  # removed meanwhile
        rec_path = record_path(kernel_id, directory)
        record = _read_record(rec_path) if rec_path.exists() else None
        if record is not None:
            seen_records.add(rec_path.name)
        kernels.append(RunningKernel(kernel_id, path, record, rec_path if record else None, mtime))
    orphans = [
        directory / name
        for name in names
        if name.startswith(_RECORD_PREFIX) and name.endswith(".json") and name not in seen_records
    ]
    kernels.sort(key=lambda k: k.started)
    return kernels, orphans


class UnknownKernel(Exception):
    """``ID`` names no running kernel, or more than one (the message says which)."""


def resolve_kernel(ident: str, directory: Path | None = None) -> RunningKernel:
    """The running kernel ``ident`` names: a kernel id, a unique prefix of one, or a
    connection file's path (any directory).

    Raises:
        UnknownKernel: nothing or more than one matches.
    """
    kernels, _ = runtime_kernels(directory)
    as_path = Path(ident).expanduser()
    if ident.endswith(".json") or os.sep in ident:
        if not as_path.is_file():
            raise UnknownKernel(f"no connection file {ident}")
        resolved = as_path.resolve()
        for k in kernels:
            if k.connection_file.resolve() == resolved:
                return k
        name = as_path.name
        kernel_id = name[len(_CONNECTION_PREFIX) : -5] if name.startswith("kernel-") else name
        return RunningKernel(kernel_id, as_path, None, None, as_path.stat().st_mtime)
    exact = [k for k in kernels if k.kernel_id == ident]
    if exact:
        return exact[0]
    matches = [k for k in kernels if k.kernel_id.startswith(ident)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        where = directory or runtime_dir()
        hint = "`kernelkit ps` lists the running ones" if kernels else "none are running"
        raise UnknownKernel(f"no running kernel {ident!r} in {where} ({hint})")
    ids = ", ".join(k.kernel_id for k in matches[:5])
    raise UnknownKernel(f"{ident!r} is the start of several kernel ids ({ids}): give more of it")
