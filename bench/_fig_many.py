"""Figure 6: many kernels.

- N ipykernels (1, 4, 8) started concurrently until every one is ready: kernelkit's
  multi-kernel manager, jupyter_client's AsyncMultiKernelManager, and the floor (N raw
  spawns at once with port-0 write-back, then a raw kernel_info + IOPub check on each).
- The managing process's memory per running kernel (a manager and a ready client per
  kernel; the fake kernel, since the kernel's own memory is not the point), measured in
  a fresh worker process.
- A warm pool: time from asking kernelkit's AsyncKernelPool for a kernel to holding a ready one
  (target <= 5 ms); jupyter_client has no pool, so its column is its own start-to-ready.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from bench import _kk, _procs
from bench._config import Config
from bench._core import (
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    AsyncContestant,
    Contestant,
    Group,
    Metric,
    Missing,
    Target,
    last_words,
)
from bench._raw import RawClient

TIMEOUT = 120.0


# -- concurrent starts ------------------------------------------------------------------


class KernelkitMany(AsyncContestant):
    name = role = KERNELKIT

    def __init__(self, n: int) -> None:
        self.n = n

    async def asample(self) -> dict[str, float]:
        mkm = _kk.multi_kernel_manager()
        try:
            t0 = time.perf_counter()
            clients = await _kk.mkm_start_ready(mkm, _procs.IPYKERNEL_SPEC, self.n)
            t1 = time.perf_counter()
            for kc in clients:
                await _kk.close_client(kc)
        finally:
            await _kk.mkm_shutdown_all(mkm)
        return {"all_ready": (t1 - t0) * 1000}

    async def asetup(self) -> None:
        _kk.multi_kernel_manager()


class JupyterClientMany(AsyncContestant):
    name = role = JUPYTER_CLIENT

    def __init__(self, n: int) -> None:
        self.n = n

    async def asetup(self) -> None:
        from jupyter_client.multikernelmanager import AsyncMultiKernelManager

        self.cls = AsyncMultiKernelManager

    async def asample(self) -> dict[str, float]:
        mkm = self.cls()

        async def one() -> Any:
            kid = await mkm.start_kernel(
                kernel_name=_procs.IPYKERNEL_SPEC,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            kc = mkm.get_kernel(kid).client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=TIMEOUT)
            return kc

        try:
            t0 = time.perf_counter()
            clients = await asyncio.gather(*(one() for _ in range(self.n)))
            t1 = time.perf_counter()
            for kc in clients:
                kc.stop_channels()
        finally:
            await mkm.shutdown_all(now=False)
        return {"all_ready": (t1 - t0) * 1000}


class FloorMany(Contestant):
    name = role = FLOOR
    note = "N raw spawns at once (port-0 write-back), then raw kernel_info + IOPub on each"

    def __init__(self, cfg: Config, n: int) -> None:
        self.cfg, self.n = cfg, n
        self.count = 0

    def sample(self) -> dict[str, float]:
        procs, clients, paths, befores = [], [], [], []
        try:
            t0 = time.perf_counter()
            for _ in range(self.n):
                self.count += 1
                path = self.cfg.tmp / "runtime" / f"floor-many-{self.n}-{self.count}.json"
                zeros = _procs.write_connection_file(path, [0, 0, 0, 0, 0])
                befores.append(json.dumps(zeros))
                paths.append(path)
                procs.append(_procs.spawn(_procs.ipykernel_argv(path)))
            for path, before, proc in zip(paths, befores, procs, strict=True):
                text = _procs.wait_for_file_change(path, before, timeout=TIMEOUT, proc=proc)
                clients.append(RawClient(json.loads(text)))
            for c in clients:
                c.wait_ready(TIMEOUT)
            t1 = time.perf_counter()
            for c in clients:
                c.send("control", "shutdown_request", {"restart": False})
            for p in procs:
                _procs.stop(p, grace=10)
        finally:
            for c in clients:
                c.close()
            for p in procs:
                _procs.stop(p, grace=0)
            for path in paths:
                path.unlink(missing_ok=True)
        return {"all_ready": (t1 - t0) * 1000}


# -- memory per kernel ------------------------------------------------------------------


def run_worker(task: str, who: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """``python -m bench._worker`` in a fresh process; its JSON answer."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench._worker", task, who, *args],
        cwd=_procs.BENCH_DIR.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        words = last_words(proc.stderr or proc.stdout)
        if any(k in words for k in ("ImportError", "AttributeError", "ModuleNotFound")):
            raise Missing(words)
        raise RuntimeError(f"worker {task} {who} exited {proc.returncode}: {words}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Memory(Contestant):
    def __init__(self, who: str, n: int) -> None:
        self.who, self.n = who, n
        self.name = self.role = who

    def setup(self) -> None:
        if self.who == KERNELKIT:
            _kk.api("kernelkit.manager", "AsyncKernelManager")

    def sample(self) -> dict[str, float]:
        r = run_worker("memory", self.who, str(self.n))
        return {"per_kernel": r["per_kernel_kib"] / 1024}


# -- warm pool --------------------------------------------------------------------------


class KernelkitPool(AsyncContestant):
    name = role = KERNELKIT
    note = "AsyncKernelPool(size=1): acquire() from a full pool"

    async def asetup(self) -> None:
        _kk.api("kernelkit.manager", "AsyncKernelPool")

    async def asample(self) -> dict[str, float]:
        async with AsyncExitStack() as stack:
            pool = await _kk.pool_open(_procs.IPYKERNEL_SPEC, 1, stack)
            t0 = time.perf_counter()
            kernel = await _kk.pool_take(pool)
            t1 = time.perf_counter()
            await _kk.pool_release(kernel)
        return {"pool_get": (t1 - t0) * 1000}


class JupyterClientNoPool(AsyncContestant):
    name = role = JUPYTER_CLIENT
    note = "no pool in jupyter_client: its start-to-ready"

    async def asetup(self) -> None:
        from jupyter_client.manager import AsyncKernelManager

        self.cls = AsyncKernelManager

    async def asample(self) -> dict[str, float]:
        km = self.cls(kernel_name=_procs.IPYKERNEL_SPEC)
        try:
            t0 = time.perf_counter()
            await km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=TIMEOUT)
            t1 = time.perf_counter()
            kc.stop_channels()
        finally:
            await km.shutdown_kernel(now=False)
        return {"pool_get": (t1 - t0) * 1000}


class NoFloor(Contestant):
    name = role = FLOOR

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def setup(self) -> None:
        raise Missing(self.reason)


def groups(cfg: Config) -> list[Group]:
    out = []
    # A quick run takes one sample of N=8 only (the size with a target).
    sizes = (
        [(8, 1)] if cfg.quick else [(1, cfg.reps(0, 4)), (4, cfg.reps(0, 3)), (8, cfg.reps(0, 3))]
    )
    for n, reps in sizes:
        out.append(
            Group(
                figure=6,
                name=f"concurrent-{n}",
                metrics=[
                    Metric(
                        "all_ready",
                        f"{n} ipykernel{'s' if n > 1 else ''} started concurrently, all ready",
                        "ms",
                        target=Target(FLOOR, "<=", 1.05) if n == 8 else None,
                    )
                ],
                contestants=[
                    lambda n=n: KernelkitMany(n),
                    lambda n=n: JupyterClientMany(n),
                    lambda n=n: FloorMany(cfg, n),
                ],
                reps=reps,
                warmup=0,
                budget_s=cfg.pick(30, 120),
            )
        )
    n_mem = cfg.pick(2, 8)
    out.append(
        Group(
            figure=6,
            name="memory",
            metrics=[Metric("per_kernel", "manager memory per running kernel", "MiB")],
            contestants=[lambda w=w: Memory(w, n_mem) for w in (KERNELKIT, JUPYTER_CLIENT, FLOOR)],
            reps=cfg.reps(1, 2),
            warmup=0,
            budget_s=cfg.pick(30, 60),
            note=f"RSS growth of a fresh process holding {n_mem} fake kernels (manager + client)",
        )
    )
    out.append(
        Group(
            figure=6,
            name="pool",
            metrics=[
                Metric(
                    "pool_get",
                    "ask a warm pool -> hold a ready kernel",
                    "ms",
                    target=Target("abs", "<=", 5),
                )
            ],
            contestants=[
                KernelkitPool,
                JupyterClientNoPool,
                lambda: NoFloor("no floor: the target is absolute (<= 5 ms)"),
            ],
            reps=cfg.reps(1, 5),
            warmup=0,
            budget_s=cfg.pick(20, 60),
        )
    )
    return out
