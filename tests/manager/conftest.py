"""Fixtures for manager tests: a private runtime dir, managers stopped after each test."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernelkit.manager import AsyncKernelManager
from kernelkit.specs import KernelSpec

from .fakes import fake_spec

__all__ = ["fake_spec"]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled_fd_count(limit: int, *, within: float = 3.0) -> int:
    """The fd count once it is <= ``limit``, or after ``within`` seconds.

    ZeroMQ closes sockets in its reaper thread, after their linger time (1 s for a client
    socket with a message still queued), and nothing signals when: look with a bounded
    back-off.
    """
    deadline = time.monotonic() + within
    pause = 0.01
    while (count := fd_count()) > limit and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return count


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def real_path(path: Path) -> str:
    return os.path.realpath(path)


def proc_cwd(pid: int) -> str:
    return os.path.realpath(f"/proc/{pid}/cwd")


def gone(pid: int) -> bool:
    """True when no process (not even a zombie) has this pid."""
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Connection files go to a directory of this test's own (checked empty after)."""
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


MakeManager = Callable[..., AsyncKernelManager]


@pytest.fixture
async def make_manager() -> AsyncIterator[MakeManager]:
    """Build AsyncKernelManagers for the fake kernel; every one is stopped after the test."""
    made: list[AsyncKernelManager] = []

    def make(*options: str, spec: KernelSpec | None = None, **kw: Any) -> AsyncKernelManager:
        km = AsyncKernelManager(kernel_spec=spec or fake_spec(*options), **kw)
        made.append(km)
        return km

    yield make
    for km in made:
        await km.shutdown_kernel(now=True)


@pytest.fixture
async def baseline_fds() -> int:
    """Open fds after one full start/ready/stop (which opens what stays open: the zmq
    context, the event loop's self-pipe), once its sockets are closed."""
    # What stays open for good: the context's I/O and reaper threads' fds, which
    # appear with its first socket.
    zmq.Context.instance().socket(zmq.PUB).close(linger=0)
    before = fd_count()
    async with AsyncKernelManager(kernel_spec=fake_spec()) as km, km.client() as kc:
        await kc.wait_for_ready(timeout=10)
    await settled_fd_count(before)
    return fd_count()
