"""A real ipykernel under a nanny, through the kernel manager."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from kernelkit import KernelDied, read_connection_file
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import NannyProvisioner
from tests.nanny.helpers import alive, gone, kill_all, nanny_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def _nanny(km: AsyncKernelManager) -> NannyProvisioner:
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    return p


async def test_start_execute_shutdown_leaves_nothing(runtime_dir: Path) -> None:
    km = AsyncKernelManager(kernel_spec=nanny_spec())
    await km.start_kernel()
    p = _nanny(km)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        assert all(alive(x) for x in pids)
        assert p.connection_file is not None
        info = read_connection_file(p.connection_file)
        assert info.nanny == p.nanny_address
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute("import os; print(os.getppid())", timeout=30)
            assert reply.content["status"] == "ok"
        await km.shutdown_kernel()
        assert await gone(pids, within=10)
        assert os.listdir(runtime_dir) == []
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)


async def test_kernel_killed_is_reported_with_exit_status(runtime_dir: Path) -> None:
    km = AsyncKernelManager(kernel_spec=nanny_spec())
    await km.start_kernel()
    p = _nanny(km)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            pending = asyncio.ensure_future(kc.execute("import time; time.sleep(30)", timeout=60))
            await asyncio.sleep(0.3)
            os.kill(pids[1], signal.SIGKILL)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(KernelDied) as err:
                await asyncio.wait_for(pending, 10)
            assert loop.time() - t0 < 5
            assert err.value.exit_code == -signal.SIGKILL
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)


async def test_manager_restart_restarts_in_place_on_the_same_ports(runtime_dir: Path) -> None:
    km = AsyncKernelManager(kernel_spec=nanny_spec())
    await km.start_kernel()
    p = _nanny(km)
    nanny_pid, first = p.nanny_pid, p.pid
    pids = [nanny_pid or 0, first or 0]
    try:
        info = km.connection_info
        assert info is not None
        await km.restart_kernel()
        assert p.nanny_pid == nanny_pid  # the same nanny
        assert p.pid != first
        assert first is not None
        assert await gone([first], within=10)
        pids.append(p.pid or 0)
        assert km.connection_info is not None
        assert km.connection_info.shell_port == info.shell_port
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute("1", timeout=30)
            assert reply.content["status"] == "ok"
        await km.shutdown_kernel()
        assert await gone(pids, within=10)
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)


async def test_output_is_kept_in_the_ring_and_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "kernel.log"
    km = AsyncKernelManager(kernel_spec=nanny_spec(log_file=str(log)))
    await km.start_kernel()
    p = _nanny(km)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            code = "import os; os.write(1, b'straight to fd 1\\n'); os.write(2, b'and fd 2\\n')"
            reply = await kc.execute(code, timeout=30)
            assert reply.content["status"] == "ok"
        assert p.control is not None
        lines: list[str] = []
        for _ in range(50):  # the nanny reads the pipes as events; bounded
            lines = (await p.control.request("output", lines=50))["lines"]
            if "and fd 2" in lines:
                break
            await asyncio.sleep(0.1)
        assert "straight to fd 1" in lines
        assert "and fd 2" in lines
        text = await asyncio.to_thread(log.read_text)
        assert "straight to fd 1" in text
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)
