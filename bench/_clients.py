"""Client drivers over one fake kernel each: kernelkit, jupyter_client and the raw floor,
async and blocking, behind the same small interface (figures 2 and 3)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

from bench import _kk, _procs
from bench._raw import AsyncRawClient, RawClient, execute_content

Hook = Callable[[Any], None]


class FakeKernel:
    """The fake kernel as a subprocess, with ports it chose itself (port-0 write-back)."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.connection_file = workdir / f"fake-{name}.json"
        before = json.dumps(_procs.write_connection_file(self.connection_file, [0, 0, 0, 0, 0]))
        self.proc = _procs.spawn(_procs.fake_argv(self.connection_file))
        _procs.wait_for_file_change(self.connection_file, before, timeout=30, proc=self.proc)
        self.info: dict[str, Any] = json.loads(self.connection_file.read_text())

    def stop(self) -> None:
        try:
            raw = RawClient(self.info)
            try:
                raw.send("control", "shutdown_request", {"restart": False})
                _procs.stop(self.proc, grace=2.0)
            finally:
                raw.close()
        finally:
            _procs.stop(self.proc, grace=0)


def _is_output(msg_type: str) -> bool:
    return msg_type not in ("status", "execute_input")


# -- async drivers ----------------------------------------------------------------------


class AsyncDriver:
    note = ""

    async def open(self, kernel: FakeKernel) -> None:
        raise NotImplementedError

    async def execute(self, code: str) -> None:
        raise NotImplementedError

    async def kernel_info(self) -> None:
        raise NotImplementedError

    async def stream(self, code: str, hook: Hook, timeout: float) -> None:
        """Run ``code``; ``hook(msg_type)`` for each of its outputs, until idle and reply;
        at most ``timeout`` seconds."""
        raise NotImplementedError

    async def drain(self) -> None:
        pass

    async def close(self) -> None:
        pass


class KernelkitAsync(AsyncDriver):
    async def open(self, kernel: FakeKernel) -> None:
        self.stack = AsyncExitStack()
        self.kc = await _kk.open_async_client(kernel.connection_file, self.stack)

    async def execute(self, code: str) -> None:
        await _kk.execute(self.kc, code)

    async def kernel_info(self) -> None:
        await _kk.kernel_info(self.kc)

    async def stream(self, code: str, hook: Hook, timeout: float) -> None:
        def on_msg(msg: Any) -> None:
            t = _kk.msg_type(msg)
            if _is_output(t):
                hook(t)

        await _kk.execute_streaming(self.kc, code, on_msg, timeout)

    async def close(self) -> None:
        if hasattr(self, "stack"):
            await self.stack.aclose()


def _jc_noop(msg: dict[str, Any]) -> None:
    pass


class JupyterClientAsync(AsyncDriver):
    def __init__(self, packer: str | None = None) -> None:
        self.packer = packer

    async def open(self, kernel: FakeKernel) -> None:
        from jupyter_client.asynchronous import AsyncKernelClient

        self.kc = kc = AsyncKernelClient()
        kc.load_connection_file(str(kernel.connection_file))
        if self.packer:
            kc.session.packer = self.packer
        self.note = f"packer: {kc.session.packer}"
        kc.start_channels()
        await kc.wait_for_ready(timeout=30)

    async def execute(self, code: str) -> None:
        await self.kc.execute_interactive(code, output_hook=_jc_noop)

    async def kernel_info(self) -> None:
        await self.kc.kernel_info(reply=True, timeout=30)

    async def stream(self, code: str, hook: Hook, timeout: float) -> None:
        def on_msg(msg: dict[str, Any]) -> None:
            t = msg["header"]["msg_type"]
            if _is_output(t):
                hook(t)

        await self.kc.execute_interactive(code, output_hook=on_msg, timeout=timeout)

    async def drain(self) -> None:
        from queue import Empty

        for _ in range(100_000):
            try:
                await self.kc.get_iopub_msg(timeout=0)
            except Empty:
                break

    async def close(self) -> None:
        if hasattr(self, "kc"):
            self.kc.stop_channels()


class FloorAsync(AsyncDriver):
    note = "raw pyzmq (zmq.asyncio) + hmac + orjson"

    async def open(self, kernel: FakeKernel) -> None:
        self.c = AsyncRawClient(kernel.info)
        await self.c.wait_ready()

    async def execute(self, code: str) -> None:
        await self.c.execute(code)

    async def kernel_info(self) -> None:
        await self.c.kernel_info()

    async def stream(self, code: str, hook: Hook, timeout: float) -> None:
        msg_id = await self.c.send("shell", "execute_request", execute_content(code))

        async def finish() -> None:
            await self.c.idle(msg_id, on_output=lambda header, content: hook(header["msg_type"]))
            await self.c.reply("shell", msg_id)

        await asyncio.wait_for(finish(), timeout)

    async def drain(self) -> None:
        await self.c.drain_iopub()

    async def close(self) -> None:
        if hasattr(self, "c"):
            self.c.close()


# -- blocking drivers -------------------------------------------------------------------


class BlockingDriver:
    note = ""

    def open(self, kernel: FakeKernel) -> None:
        raise NotImplementedError

    def execute(self, code: str) -> None:
        raise NotImplementedError

    def kernel_info(self) -> None:
        raise NotImplementedError

    def stream(self, code: str, hook: Hook, timeout: float) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


class KernelkitBlocking(BlockingDriver):
    def open(self, kernel: FakeKernel) -> None:
        self.stack = ExitStack()
        self.kc = _kk.open_blocking_client(kernel.connection_file, self.stack)
        if getattr(self.kc, "direct_io", False):
            self.note = "shell requests do their I/O in the calling thread (direct_io)"

    def execute(self, code: str) -> None:
        _kk.execute_blocking(self.kc, code)

    def kernel_info(self) -> None:
        _kk.kernel_info_blocking(self.kc)

    def stream(self, code: str, hook: Hook, timeout: float) -> None:
        def on_msg(msg: Any) -> None:
            t = _kk.msg_type(msg)
            if _is_output(t):
                hook(t)

        _kk.execute_streaming_blocking(self.kc, code, on_msg, timeout)

    def close(self) -> None:
        if hasattr(self, "stack"):
            self.stack.close()


class JupyterClientBlocking(BlockingDriver):
    def __init__(self, packer: str | None = None) -> None:
        self.packer = packer

    def open(self, kernel: FakeKernel) -> None:
        from jupyter_client.blocking import BlockingKernelClient

        self.kc = kc = BlockingKernelClient()
        kc.load_connection_file(str(kernel.connection_file))
        if self.packer:
            kc.session.packer = self.packer
        self.note = f"packer: {kc.session.packer}"
        kc.start_channels()
        kc.wait_for_ready(timeout=30)

    def execute(self, code: str) -> None:
        self.kc.execute_interactive(code, output_hook=_jc_noop)

    def kernel_info(self) -> None:
        self.kc.kernel_info(reply=True, timeout=30)

    def stream(self, code: str, hook: Hook, timeout: float) -> None:
        def on_msg(msg: dict[str, Any]) -> None:
            t = msg["header"]["msg_type"]
            if _is_output(t):
                hook(t)

        self.kc.execute_interactive(code, output_hook=on_msg, timeout=timeout)

    def drain(self) -> None:
        from queue import Empty

        for _ in range(100_000):
            try:
                self.kc.get_iopub_msg(timeout=0)
            except Empty:
                break

    def close(self) -> None:
        if hasattr(self, "kc"):
            self.kc.stop_channels()


class FloorBlocking(BlockingDriver):
    note = "raw pyzmq (blocking) + hmac + orjson"

    def open(self, kernel: FakeKernel) -> None:
        self.c = RawClient(kernel.info)
        self.c.wait_ready()

    def execute(self, code: str) -> None:
        self.c.execute(code)

    def kernel_info(self) -> None:
        self.c.kernel_info()

    def stream(self, code: str, hook: Hook, timeout: float) -> None:
        msg_id = self.c.send("shell", "execute_request", execute_content(code))
        self.c.idle(msg_id, timeout, on_output=lambda header, content: hook(header["msg_type"]))
        self.c.reply("shell", msg_id)

    def drain(self) -> None:
        self.c.drain_iopub()

    def close(self) -> None:
        if hasattr(self, "c"):
            self.c.close()


def timed(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0
