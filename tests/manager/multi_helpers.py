"""Helpers for the multi-kernel manager and pool tests: fake-kernel specs, exit watching."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from kernelkit.manager import AsyncKernelManager
from kernelkit.specs import KernelSpec
from kernelkit.testing import fake_kernel_spec


def fake_spec(runtime_dir: Path, *options: str, name: str = "fake") -> KernelSpec:
    """A kernelspec running kernelkit.testing's fake kernel with ``options``."""
    return fake_kernel_spec(
        *options,
        name=name,
        metadata={
            "kernel_provisioner": {
                "provisioner_name": "local-provisioner",
                "config": {"runtime_dir": str(runtime_dir), "startup_timeout": 20.0},
            },
        },
    )


def broken_spec(runtime_dir: Path) -> KernelSpec:
    """A kernelspec whose process exits at once with an error."""
    return KernelSpec(
        name="broken",
        resource_dir=Path(__file__).parent,
        argv=(
            sys.executable,
            "-c",
            "import sys; print('no luck'); sys.exit(7)",
            "{connection_file}",
        ),
        display_name="Broken",
        language="fake",
        metadata={
            "kernelkit": {"ports": "write-back"},
            "kernel_provisioner": {
                "provisioner_name": "local-provisioner",
                "config": {"runtime_dir": str(runtime_dir), "startup_timeout": 20.0},
            },
        },
    )


def pid_of(km: AsyncKernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ExitClock:
    """Records, per pid, the loop time at which it exited (pidfd readable: no polling)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.exited: dict[int, float] = {}
        self._fds: dict[int, int] = {}

    def watch(self, pid: int) -> None:
        fd = os.pidfd_open(pid)
        self._fds[pid] = fd

        def on_exit() -> None:
            self.loop.remove_reader(fd)
            self.exited[pid] = self.loop.time()

        self.loop.add_reader(fd, on_exit)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(Exception):
                self.loop.remove_reader(fd)
            os.close(fd)
        self._fds.clear()


def kernels_in(runtime_dir: Path) -> list[int]:
    """Pids of the live kernel processes whose connection file is in ``runtime_dir``."""
    needle = str(runtime_dir).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in cmdline and alive(int(entry)):
            found.append(int(entry))
    return sorted(found)
