"""Figure 1: an ipykernel 7.4 lifecycle: start-to-ready, restart, graceful shutdown.

Every contestant launches the same command (the ``bench-ipykernel`` spec: this
interpreter, ``-m ipykernel_launcher``). One sample is one whole lifecycle:

- start: from asking for a kernel to a client that has its kernel_info_reply and one IOPub
  message (PROTOCOL.md's readiness);
- restart: from asking for a restart to ready again;
- shutdown: from asking for a graceful shutdown to the process gone.

The floor is the kernel's own time with a raw zmq client: a connection file of port 0s,
the process spawned, its port write-back noticed (the file is checked every 2 ms at
most), a raw kernel_info and one IOPub message; shutdown is shutdown_request on control
until the process has exited; restart is that shutdown plus a new start on the same
ports, the client connecting at once (zmq queues the request; the floor's sockets retry
a refused connect every 2 ms).
"""

from __future__ import annotations

import subprocess
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
    Target,
)
from bench._raw import RawClient

TIMEOUT = 60.0

METRICS = [
    Metric("start", "start-to-ready (ipykernel)", "ms", target=Target(FLOOR, "<=", 1.05)),
    Metric("restart", "restart-to-ready (ipykernel)", "ms"),
    Metric("shutdown", "graceful shutdown (ipykernel)", "ms", target=Target(FLOOR, "<=", 1.05)),
]


def ms(t: float) -> float:
    return t * 1000.0


class KernelkitLifecycle(AsyncContestant):
    name = role = KERNELKIT

    async def asetup(self) -> None:
        _kk.api("kernelkit.manager", "AsyncKernelManager")

    async def asample(self) -> dict[str, float]:
        async with AsyncExitStack() as stack:
            t0 = time.perf_counter()
            km, kc = await _kk.start_kernel(_procs.IPYKERNEL_SPEC, stack)
            t1 = time.perf_counter()
            await _kk.restart(km, kc)
            t2 = time.perf_counter()
            await _kk.close_client(kc)
            t3 = time.perf_counter()
            await _kk.shutdown(km)
            t4 = time.perf_counter()
        return {"start": ms(t1 - t0), "restart": ms(t2 - t1), "shutdown": ms(t4 - t3)}


class JupyterClientLifecycle(AsyncContestant):
    name = role = JUPYTER_CLIENT

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
            await km.restart_kernel(now=False)
            await kc.wait_for_ready(timeout=TIMEOUT)
            t2 = time.perf_counter()
            kc.stop_channels()
            t3 = time.perf_counter()
            await km.shutdown_kernel(now=False)
            t4 = time.perf_counter()
        finally:
            if km.has_kernel:
                await km.shutdown_kernel(now=True)
        return {"start": ms(t1 - t0), "restart": ms(t2 - t1), "shutdown": ms(t4 - t3)}


class FloorLifecycle(Contestant):
    name = role = FLOOR
    note = "raw spawn, port-0 write-back, raw zmq kernel_info + IOPub; restart on same ports"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.n = 0

    def start(self, path: Any, ports: list[int] | None = None) -> tuple[Any, RawClient]:
        if ports is None:  # a first start: the kernel picks its ports and writes them back
            proc, info = _procs.spawn_ipykernel_port0(path, timeout=TIMEOUT)
        else:  # a restart keeps its ports; the client connects at once, zmq retries
            info = _procs.write_connection_file(path, ports)
            proc = _procs.spawn(_procs.ipykernel_argv(path))
        client = RawClient(info)
        try:
            client.wait_ready(TIMEOUT)
        except BaseException:
            client.close()
            _procs.stop(proc, grace=0)
            raise
        return proc, client

    def sample(self) -> dict[str, float]:
        self.n += 1
        path = self.cfg.tmp / "runtime" / f"floor-lifecycle-{self.n}.json"
        procs = []
        try:
            t0 = time.perf_counter()
            proc, client = self.start(path)
            procs.append(proc)
            t1 = time.perf_counter()
            ports = [client.info[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")]
            client.shutdown(restart=True)
            client.close()
            proc.wait(TIMEOUT)
            proc, client = self.start(path, ports)
            procs.append(proc)
            t2 = t3 = time.perf_counter()
            client.shutdown()
            proc.wait(TIMEOUT)
            t4 = time.perf_counter()
            client.close()
        finally:
            for p in procs:
                _procs.stop(p, grace=0)
            path.unlink(missing_ok=True)
        return {"start": ms(t1 - t0), "restart": ms(t2 - t1), "shutdown": ms(t4 - t3)}


def groups(cfg: Config) -> list[Group]:
    return [
        Group(
            figure=1,
            name="lifecycle",
            metrics=METRICS,
            contestants=[
                KernelkitLifecycle,
                JupyterClientLifecycle,
                lambda: FloorLifecycle(cfg),
            ],
            reps=cfg.reps(2, 8),
            warmup=cfg.pick(0, 1),
            budget_s=cfg.pick(20, 120),
        )
    ]
