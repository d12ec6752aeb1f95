"""Shared pieces of the nanny tests: specs that run under a nanny, process checks."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from kernelkit.specs import KernelSpec, load_kernel_spec

KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"


def nanny_spec(name: str = "python3", **config: Any) -> KernelSpec:
    """A real kernel's spec whose metadata picks the nanny provisioner."""
    spec = load_kernel_spec(KERNELS / name)
    metadata = dict(spec.metadata)
    metadata["kernel_provisioner"] = {"provisioner_name": "nanny-provisioner", "config": config}
    return dataclasses.replace(spec, metadata=metadata)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def gone(pids: list[int], within: float) -> bool:
    """True once none of ``pids`` runs (not our children: looked at with a back-off)."""
    deadline = time.monotonic() + within
    pause = 0.01
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return True


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


class Relay:
    """A TCP relay in front of a nanny's control port that keeps the bytes both ways."""

    def __init__(self, host: str, target: int) -> None:
        self.host = host
        self.target = target
        self.wire = bytearray()
        self.to_client = bytearray()
        self.tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, keep: bytearray
    ) -> None:
        try:
            while data := await r.read(65536):
                keep += data
                self.wire += data
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass  # the other side went away: the relay just ends
        finally:
            w.close()

    async def serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nr, nw = await asyncio.open_connection(self.host, self.target)
        for task in (self._pipe(r, nw, bytearray()), self._pipe(nr, w, self.to_client)):
            t = asyncio.ensure_future(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def start(self) -> int:
        """Listen on 127.0.0.1; the port."""
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        self.server.close()
        for t in list(self.tasks):
            t.cancel()
