"""Start/stop cycles leave nothing behind: no process, no fd, no file.

20 cycles with the fake kernel by default (a leak of anything per cycle shows after one);
``KERNELKIT_CYCLES=200`` for the long run, and
``KERNELKIT_CYCLES_KERNEL=python3`` to cycle ipykernel instead.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import zmq

from kernelkit.manager import AsyncKernelManager
from kernelkit.specs import KernelSpec, load_kernel_spec
from tests.manager.fakes import fake_spec

CYCLES = int(os.environ.get("KERNELKIT_CYCLES", "20"))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(max(120, CYCLES * 4))]


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == me:
                found.add(int(entry.name))
    return found


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


async def _settled_fds(limit: int, within: float = 3.0) -> int:
    # ZeroMQ closes sockets in its reaper thread after their linger time; nothing signals
    # it, so look with a bounded back-off.
    deadline = time.monotonic() + within
    pause = 0.01
    while (count := _fds()) > limit and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return count


def _spec() -> KernelSpec:
    name = os.environ.get("KERNELKIT_CYCLES_KERNEL")
    if name:
        return load_kernel_spec(Path(sys.prefix) / "share" / "jupyter" / "kernels" / name)
    return fake_spec()


async def _cycle(spec: KernelSpec) -> None:
    async with AsyncKernelManager(kernel_spec=spec) as km, km.client() as kc:
        await kc.wait_for_ready(timeout=60)


async def test_start_stop_cycles_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    cycles = CYCLES
    spec = _spec()
    # What stays open for good: the context's I/O and reaper threads' fds, which
    # appear with its first socket.
    zmq.Context.instance().socket(zmq.PUB).close(linger=0)
    before = _fds()
    await _cycle(spec)  # the first cycle opens what stays open (zmq context, self-pipe)
    fds = await _settled_fds(before)
    children = _children()
    t0 = time.monotonic()
    deadline = t0 + max(110.0, cycles * 3.5)
    for _ in range(cycles):
        assert time.monotonic() < deadline, "cycles took too long"
        await _cycle(spec)
    elapsed = time.monotonic() - t0
    print(
        f"\n{cycles} cycles of {spec.name}: {elapsed:.1f} s, {elapsed / cycles * 1000:.0f} ms each"
    )
    assert _children() == children
    assert await _settled_fds(fds) <= fds
    assert _files(runtime) == []
