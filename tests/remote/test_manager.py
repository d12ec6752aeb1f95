"""Remote kernels managed like local ones: AsyncKernelManager, KernelManager, the
multi-kernel manager and the pool, on real servers (the RemoteProvisioner underneath)."""

from __future__ import annotations

import asyncio
import time

import pytest

from kernelkit import (
    AsyncKernelManager,
    AsyncKernelPool,
    AsyncMultiKernelManager,
    KernelDied,
    KernelManager,
)
from kernelkit.client import AsyncKernelClient
from kernelkit.protocol import Message
from kernelkit.remote import RemoteProvisioner, RemoteServer, ServerAPI, ServerRegistry
from tests.remote.kernels import remote_finder

pytestmark = pytest.mark.integration

_USER = {"KERNEL_USERNAME": "kernelkit-test"}  # Enterprise Gateway refuses root


def _text(outputs: list[Message]) -> str:
    return "".join(m.content.get("text", "") for m in outputs if m.msg_type == "stream")


async def _pid(kc: AsyncKernelClient) -> int:
    outputs: list[Message] = []
    await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=20)
    return int(_text(outputs))


async def _exists(server: RemoteServer, kernel_id: str) -> bool:
    async with ServerAPI(server) as api:
        return await api.get_kernel(kernel_id) is not None


async def _interrupted(km: AsyncKernelManager, kc: AsyncKernelClient) -> None:
    running = asyncio.Event()
    task = asyncio.create_task(
        kc.execute_interactive(
            "import time; print('running', flush=True); time.sleep(30)",
            output_hook=lambda m: running.set() if m.msg_type == "stream" else None,
            timeout=25,
        )
    )
    await asyncio.wait_for(running.wait(), 15)
    await km.interrupt_kernel()
    reply = await task
    assert reply.content["ename"] == "KeyboardInterrupt"


async def test_async_manager_start_execute_interrupt_restart_shutdown(
    registry: ServerRegistry, js: RemoteServer
) -> None:
    km = AsyncKernelManager("remote/js/python3", finder=remote_finder(registry))
    await km.start_kernel()
    try:
        p = km.provisioner
        assert isinstance(p, RemoteProvisioner)
        assert km.connection_info is None
        remote_id = p.remote_kernel_id
        assert remote_id is not None
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            pid = await _pid(kc)
            await _interrupted(km, kc)
            assert await km.is_alive()
            await km.restart_kernel()
            assert p.remote_kernel_id == remote_id  # restarted in place by the server
            await kc.wait_for_ready(timeout=30)
            assert await _pid(kc) != pid
            assert km.state == "running"
    finally:
        t0 = time.monotonic()
        await km.shutdown_kernel()
        assert time.monotonic() - t0 < 15
    assert km.state == "stopped"
    assert not await _exists(js, remote_id)


def test_blocking_manager(registry: ServerRegistry, js: RemoteServer) -> None:
    with KernelManager("remote/js/python3", finder=remote_finder(registry)) as km:
        p = km.provisioner
        assert isinstance(p, RemoteProvisioner)
        remote_id = p.remote_kernel_id
        assert remote_id is not None
        with km.client() as kc:
            kc.wait_for_ready(timeout=30)
            outputs: list[Message] = []
            kc.execute("print(6 * 7)", outputs=outputs, timeout=20)
            assert _text(outputs) == "42\n"
            km.interrupt_kernel()
            km.restart_kernel()
            kc.wait_for_ready(timeout=30)
            assert kc.execute("1", timeout=20).content["status"] == "ok"
    assert not asyncio.run(_exists(js, remote_id))


async def test_multi_kernel_manager(registry: ServerRegistry, js: RemoteServer) -> None:
    async with AsyncMultiKernelManager(finder=remote_finder(registry)) as mkm:
        kernel_id = await mkm.start_kernel("remote/js/python3")
        km = mkm.get_kernel(kernel_id)
        p = km.provisioner
        assert isinstance(p, RemoteProvisioner)
        assert p.remote_kernel_id is not None
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            await _interrupted(km, kc)
            await mkm.restart_kernel(kernel_id)
            await kc.wait_for_ready(timeout=30)
            assert (await kc.execute("1", timeout=20)).content["status"] == "ok"
        remote_id = p.remote_kernel_id
        await mkm.shutdown_kernel(kernel_id)
        assert not await _exists(js, remote_id)


async def test_pool(registry: ServerRegistry, js: RemoteServer) -> None:
    # By type: two concurrent finds on one finder (the pool's first start and the caller's)
    # make the second report the listing as "still listing" instead of waiting for it.
    kernel_type = remote_finder(registry).find().get("remote/js/python3")
    async with AsyncKernelPool(kernel_type, size=1, ready_timeout=60) as pool:
        async with await pool.acquire(timeout=60) as kernel:
            p = kernel.manager.provisioner
            assert isinstance(p, RemoteProvisioner)
            assert p.remote_kernel_id is not None
            remote_id = p.remote_kernel_id
            assert (await kernel.client.execute("1", timeout=20)).content["status"] == "ok"
            await _interrupted(kernel.manager, kernel.client)
            await kernel.manager.restart_kernel()
            await kernel.client.wait_for_ready(timeout=30)
            assert (await kernel.client.execute("1", timeout=20)).content["status"] == "ok"
        assert not await _exists(js, remote_id)


@pytest.mark.parametrize("kind", ["kg", "eg"])
async def test_start_to_execute_on_the_gateways(
    kind: str, request: pytest.FixtureRequest, registry: ServerRegistry
) -> None:
    server: RemoteServer = request.getfixturevalue(kind)
    km = AsyncKernelManager(f"remote/{kind}/python3", finder=remote_finder(registry))
    await km.start_kernel(env=_USER)
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            outputs: list[Message] = []
            await kc.execute("print(6 * 7)", outputs=outputs, timeout=20)
            assert _text(outputs) == "42\n"
    finally:
        p = km.provisioner
        assert isinstance(p, RemoteProvisioner)
        remote_id = p.remote_kernel_id
        await km.shutdown_kernel()
    assert remote_id is not None
    assert not await _exists(server, remote_id)


async def test_kernel_deleted_by_someone_else_is_reported_dead(
    registry: ServerRegistry, js: RemoteServer
) -> None:
    died: list[BaseException] = []
    km = AsyncKernelManager(
        "remote/js/python3", finder=remote_finder(registry), on_dead=died.append
    )
    await km.start_kernel()
    try:
        p = km.provisioner
        assert isinstance(p, RemoteProvisioner)
        assert p.remote_kernel_id is not None
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            pending = asyncio.create_task(kc.execute("import time; time.sleep(30)", timeout=30))
            await asyncio.sleep(0.3)
            async with ServerAPI(js) as api:
                await api.delete_kernel(p.remote_kernel_id)
            t0 = time.monotonic()
            with pytest.raises(KernelDied, match="no longer has the kernel"):
                await asyncio.wait_for(pending, 15)
            assert time.monotonic() - t0 < 10
            assert km.state == "dead"
            assert died
    finally:
        await km.shutdown_kernel()
