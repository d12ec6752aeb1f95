"""A kernel started on a real server by the RemoteProvisioner, with a client over the
WebSocket transport; and a TCP relay whose connections a test can cut."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kernelkit.client import AsyncKernelClient
from kernelkit.discovery import KernelFinder, SpecProvider
from kernelkit.remote import RemoteProvider, RemoteProvisioner, RemoteServer, ServerRegistry
from kernelkit.specs import KernelSpec


def remote_spec(name: str = "python3") -> KernelSpec:
    return KernelSpec(
        name=name,
        resource_dir=Path("/nonexistent"),
        argv=(),
        display_name=name,
        language="python",
    )


@contextlib.asynccontextmanager
async def started(server: RemoteServer, name: str = "python3") -> AsyncIterator[RemoteProvisioner]:
    """A kernel started by the provisioner as a manager would; deleted at the end."""
    p = RemoteProvisioner(kernel_id=str(uuid.uuid4()), kernel_spec=remote_spec(name), server=server)
    # Not root's name: Enterprise Gateway refuses root (its unauthorized_users).
    params = await p.pre_launch(env={"KERNEL_USERNAME": "kernelkit-test"})
    await p.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
    await p.post_launch()
    try:
        yield p
    finally:
        await p.cleanup()


@contextlib.asynccontextmanager
async def connected(p: RemoteProvisioner, **options: Any) -> AsyncIterator[AsyncKernelClient]:
    client = AsyncKernelClient(p.create_transport(**options), kernel_name="python3")
    async with client:
        await client.wait_for_ready(timeout=30)
        yield client


class Relay:
    """A TCP relay to ``target`` on 127.0.0.1; :meth:`cut` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self._server.wait_closed()

    def freeze(self) -> None:
        """Stop forwarding (connections stay open, silent: a hung server or network)."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        tasks = {
            asyncio.ensure_future(pump(reader, up_writer)),
            asyncio.ensure_future(pump(up_reader, writer)),
        }
        self._tasks |= tasks
        await asyncio.wait(tasks)
        self._tasks -= tasks


def remote_finder(registry: ServerRegistry, time_limit: float = 10.0) -> KernelFinder:
    """A finder of the local kernelspecs and the registry's servers."""
    return KernelFinder(
        {"spec": SpecProvider(), "remote": RemoteProvider(registry)}, time_limit=time_limit
    )
