"""Figure 12: sandboxed kernels (bubblewrap), against the same kernel unsandboxed.

- start: start-to-ready of the ``bench-ipykernel`` kernel in a sandbox (``ipc``
  transport, control group when memory/process limits are set: here 512M and 256
  processes) vs the same manager without the sandbox (target <= 1.1x). The "floor"
  column is kernelkit unsandboxed; jupyter_client's start is shown for reference.
- rtt: one ``execute('pass')`` round trip (request to reply and idle), median over 100,
  over ``ipc`` in the sandbox vs ``tcp`` unsandboxed ("floor" column); an unsandboxed
  ``ipc`` kernel is shown beside them.
- every kernel keeps IPython's state on tmpfs (``IPYTHONDIR``), as a sandboxed one does.
- pool: ``acquire()`` from a full ``AsyncKernelPool(sandbox=...)``: asking to holding a
  ready sandboxed kernel (target <= 5 ms, absolute).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import AsyncExitStack
from typing import Any

from bench import _kk, _procs
from bench._config import Config
from bench._core import (
    EXTRA,
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    AsyncContestant,
    Contestant,
    Group,
    Metric,
    Missing,
    Target,
)

TIMEOUT = 60.0
LIMITS: dict[str, Any] = {"memory": "512M", "processes": 256}
RTT_REQUESTS = 100


def _need_bwrap() -> None:
    if shutil.which("bwrap") is None:
        raise Missing("bubblewrap is not installed (apt-get install bubblewrap)")


def _ipython_dir() -> str:
    """IPython's state (its history database, written at every execution) on tmpfs for
    every contestant: a sandboxed kernel keeps it in its private /tmp (memory), and a
    history on disk would be measured instead of the sandbox and the transport."""
    global _IPYTHON_DIR
    if _IPYTHON_DIR is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        _IPYTHON_DIR = tempfile.mkdtemp(prefix="kk-bench-ipython-", dir=base)
        atexit.register(shutil.rmtree, _IPYTHON_DIR, ignore_errors=True)
    return _IPYTHON_DIR


_IPYTHON_DIR: str | None = None


async def _start(stack: AsyncExitStack, *, ipc: bool = False, **options: Any) -> tuple[Any, Any]:
    cls = _kk.api("kernelkit.manager", "AsyncKernelManager")
    if ipc:  # the local provisioner over ipc, as the kernelspec's metadata asks
        spec = _kk.api("kernelkit.specs", "get_kernel_spec")(_procs.IPYKERNEL_SPEC)
        config = {"provisioner_name": "local-provisioner", "config": {"transport": "ipc"}}
        spec = dataclasses.replace(spec, metadata={**spec.metadata, "kernel_provisioner": config})
        km = cls(kernel_spec=spec, **options)
    else:
        km = cls(kernel_name=_procs.IPYKERNEL_SPEC, **options)
    await km.start_kernel(env={"IPYTHONDIR": _ipython_dir()})
    stack.push_async_callback(km.shutdown_kernel, now=True)
    kc = km.client()
    await kc.start()
    stack.push_async_callback(kc.aclose)
    await kc.wait_for_ready(timeout=TIMEOUT)
    return km, kc


class StartKernelkit(AsyncContestant):
    """Start-to-ready with kernelkit's manager, sandboxed or not."""

    def __init__(self, *, sandbox: dict[str, Any] | None) -> None:
        self.options = {"sandbox": sandbox} if sandbox is not None else {}
        self.name = "kernelkit sandboxed" if sandbox is not None else "kernelkit unsandboxed"
        self.role = KERNELKIT if sandbox is not None else FLOOR
        self.note = "bwrap, ipc, cgroup 512M/256 procs" if sandbox is not None else "tcp"

    async def asetup(self) -> None:
        if self.options:
            _need_bwrap()

    async def asample(self) -> dict[str, float]:
        async with AsyncExitStack() as stack:
            t0 = time.perf_counter()
            await _start(stack, **self.options)
            t1 = time.perf_counter()
        return {"start": (t1 - t0) * 1000}


class StartJupyterClient(AsyncContestant):
    name = role = JUPYTER_CLIENT
    note = "unsandboxed, for reference"

    async def asetup(self) -> None:
        from jupyter_client.manager import AsyncKernelManager

        self.cls = AsyncKernelManager

    async def asample(self) -> dict[str, float]:
        km = self.cls(kernel_name=_procs.IPYKERNEL_SPEC)
        try:
            t0 = time.perf_counter()
            await km.start_kernel(
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "IPYTHONDIR": _ipython_dir()},
            )
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=TIMEOUT)
            t1 = time.perf_counter()
            kc.stop_channels()
        finally:
            await km.shutdown_kernel(now=True)
        return {"start": (t1 - t0) * 1000}


class Rtt(AsyncContestant):
    """Median execute round trip of one running kernel."""

    def __init__(self, name: str, role: str, note: str, **options: Any) -> None:
        self.name, self.role, self.note = name, role, note
        self.options = options
        self.stack: AsyncExitStack | None = None
        self.kc: Any = None

    async def asetup(self) -> None:
        if "sandbox" in self.options:
            _need_bwrap()
        self.stack = AsyncExitStack()
        _, self.kc = await _start(self.stack, **self.options)

    async def asample(self) -> dict[str, float]:
        times = []
        for _ in range(RTT_REQUESTS):
            t0 = time.perf_counter()
            await _kk.execute(self.kc, "pass")
            times.append(time.perf_counter() - t0)
        return {"rtt": statistics.median(times) * 1e6}

    async def ateardown(self) -> None:
        if self.stack is not None:
            await self.stack.aclose()


class PoolSandboxed(AsyncContestant):
    name = role = KERNELKIT
    note = "AsyncKernelPool(size=1, sandbox=...): acquire() from a full pool"

    async def asetup(self) -> None:
        _need_bwrap()

    async def asample(self) -> dict[str, float]:
        cls = _kk.api("kernelkit.manager", "AsyncKernelPool")
        async with cls(kernel_name=_procs.IPYKERNEL_SPEC, size=1, sandbox=LIMITS) as pool:
            await pool.start()
            t0 = time.perf_counter()
            kernel = await pool.acquire()
            t1 = time.perf_counter()
            await kernel.aclose()
        return {"pool_get": (t1 - t0) * 1000}


class Absent(Contestant):
    def __init__(self, role: str, reason: str) -> None:
        self.name = self.role = role
        self.reason = reason

    def setup(self) -> None:
        raise Missing(self.reason)


def groups(cfg: Config) -> list[Group]:
    return [
        Group(
            figure=9,
            name="sandbox-start",
            metrics=[
                Metric(
                    "start",
                    "start-to-ready, sandboxed vs not (ipykernel)",
                    "ms",
                    target=Target(FLOOR, "<=", 1.1),
                )
            ],
            contestants=[
                lambda: StartKernelkit(sandbox=LIMITS),
                StartJupyterClient,
                lambda: StartKernelkit(sandbox=None),
            ],
            reps=cfg.reps(3, 10),
            warmup=1,
            budget_s=cfg.pick(30, 120),
            note="floor = the same kernelkit manager without the sandbox",
        ),
        Group(
            figure=9,
            name="sandbox-rtt",
            metrics=[Metric("rtt", "execute('pass') round trip, ipc vs tcp", "us")],
            contestants=[
                lambda: Rtt("kernelkit sandboxed ipc", KERNELKIT, "bwrap", sandbox={}),
                lambda: Absent(JUPYTER_CLIENT, "not measured: the comparison is ipc vs tcp"),
                lambda: Rtt("kernelkit tcp", FLOOR, "unsandboxed"),
                lambda: Rtt(
                    "kernelkit ipc",
                    EXTRA,
                    "unsandboxed",
                    ipc=True,
                ),
            ],
            reps=cfg.reps(2, 5),
            warmup=1,
            budget_s=cfg.pick(30, 90),
            note="floor = kernelkit over tcp without a sandbox",
        ),
        Group(
            figure=9,
            name="sandbox-pool",
            metrics=[
                Metric(
                    "pool_get",
                    "ask a sandboxed pool -> hold a ready kernel",
                    "ms",
                    target=Target("abs", "<=", 5),
                )
            ],
            contestants=[
                PoolSandboxed,
                lambda: Absent(JUPYTER_CLIENT, "jupyter_client has no pool"),
                lambda: Absent(FLOOR, "no floor: the target is absolute (<= 5 ms)"),
            ],
            reps=cfg.reps(2, 5),
            warmup=0,
            budget_s=cfg.pick(30, 60),
        ),
    ]
