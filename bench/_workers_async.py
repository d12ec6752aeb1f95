"""Kernel launches in a worker process (figure 6's memory, figure 8's port collisions).

Each contestant starts the fake kernel (spec ``bench-fake``) its own way and stops it
gracefully: kernelkit's AsyncKernelManager, jupyter_client's AsyncKernelManager, and the
floor (the kernel picks its ports and writes them back; a raw client checks readiness).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import zmq

from bench import _kk, _procs
from bench._raw import RawClient


class Opener:
    async def start(self) -> Any:
        raise NotImplementedError

    async def stop(self, handle: Any) -> None:
        raise NotImplementedError


class KernelkitOpener(Opener):
    async def start(self) -> Any:
        stack = AsyncExitStack()
        try:
            km, kc = await _kk.start_kernel(_procs.FAKE_SPEC, stack)
        except BaseException:
            await stack.aclose()
            raise
        return stack, km, kc

    async def stop(self, handle: Any) -> None:
        stack, km, kc = handle
        try:
            await _kk.close_client(kc)
            await _kk.shutdown(km)
        finally:
            await stack.aclose()


class JupyterClientOpener(Opener):
    def __init__(self) -> None:
        from jupyter_client.manager import AsyncKernelManager

        self.cls = AsyncKernelManager

    async def start(self) -> Any:
        km = self.cls(kernel_name=_procs.FAKE_SPEC)
        try:
            await km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
        except BaseException:
            if km.has_kernel:
                await km.shutdown_kernel(now=True)
            raise
        return km, kc

    async def stop(self, handle: Any) -> None:
        km, kc = handle
        kc.stop_channels()
        await km.shutdown_kernel(now=False)


class FloorOpener(Opener):
    def __init__(self) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.dir = Path(
            tempfile.mkdtemp(prefix="floor-", dir=os.environ.get("JUPYTER_RUNTIME_DIR"))
        )
        self.n = 0

    async def start(self) -> Any:
        self.n += 1
        path = self.dir / f"kernel-{self.n}.json"
        before = json.dumps(_procs.write_connection_file(path, [0, 0, 0, 0, 0]))
        proc = _procs.spawn(_procs.fake_argv(path))
        try:
            _procs.wait_for_file_change(path, before, timeout=30, proc=proc)
            client = RawClient(json.loads(path.read_text()), self.ctx)
            client.wait_ready(30)
        except BaseException:
            _procs.stop(proc, grace=0)
            raise
        return proc, client, path

    async def stop(self, handle: Any) -> None:
        proc, client, path = handle
        try:
            client.shutdown()
            proc.wait(10)
        finally:
            client.close()
            _procs.stop(proc, grace=0)
            path.unlink(missing_ok=True)


def opener(who: str) -> Opener:
    if who == "kernelkit":
        return KernelkitOpener()
    if who == "jupyter_client":
        return JupyterClientOpener()
    return FloorOpener()


def memory(who: str, n: int) -> dict[str, Any]:
    """RSS growth of this (the managing) process per running kernel, with a client each."""

    async def run() -> dict[str, Any]:
        op = opener(who)
        await op.stop(await op.start())  # lazy imports and first-use caches
        gc.collect()
        before = _procs.rss_kib()
        handles = []
        try:
            for _ in range(n):
                handles.append(await op.start())
            gc.collect()
            after = _procs.rss_kib()
        finally:
            for h in handles:
                await op.stop(h)
        return {"before_kib": before, "after_kib": after, "per_kernel_kib": (after - before) / n}

    return asyncio.run(run())


def launches(who: str, n: int) -> dict[str, Any]:
    """Start and stop n kernels one after another; count the starts that failed."""

    async def run() -> dict[str, Any]:
        op = opener(who)
        failed, errors = 0, []
        t0 = time.monotonic()
        for _ in range(n):
            try:
                handle = await asyncio.wait_for(op.start(), 60)
            except Exception as exc:
                failed += 1
                if len(errors) < 3:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            await asyncio.wait_for(op.stop(handle), 60)
        return {
            "launched": n,
            "failed": failed,
            "errors": errors,
            "seconds": time.monotonic() - t0,
        }

    return asyncio.run(run())
