"""Processes that escape the kernel's process group and parentage (issue 14, item 3).

A real ipykernel runs code that starts a ``setsid`` child or a double-forked daemon; after
``shutdown_kernel()`` (graceful, or after a crash) none of them may survive. The third
case of the issue, the owner killed, needs a process that outlives the owner: the nanny
(tests/nanny/test_orphans_nanny.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.specs import KernelSpec, load_kernel_spec
from tests.nanny.escapees import DAEMON, SETSID_CHILD
from tests.nanny.helpers import alive, gone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"


def _spec() -> KernelSpec:
    return load_kernel_spec(KERNELS / "python3")


def kernel_pid(km: AsyncKernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def run_code(kc: AsyncKernelClient, code: str) -> None:
    reply = await kc.execute(code, timeout=30)
    assert reply.content["status"] == "ok", reply.content


async def start_escapee(kc: AsyncKernelClient, kernel: int, template: str, out: Path) -> int:
    await run_code(kc, template.format(out=str(out)))
    pid = int(await asyncio.to_thread(out.read_text))
    assert alive(pid)
    assert os.getsid(pid) != os.getsid(kernel)  # it left the kernel's session and group
    return pid


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.mark.parametrize("template", [SETSID_CHILD, DAEMON], ids=["setsid-child", "daemon"])
async def test_graceful_shutdown_leaves_no_escapee(tmp_path: Path, template: str) -> None:
    km = AsyncKernelManager(kernel_spec=_spec())
    await km.start_kernel()
    pids: list[int] = []
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            pids.append(await start_escapee(kc, kernel_pid(km), template, tmp_path / "pid"))
        await km.shutdown_kernel()
        assert await gone(pids, within=5), "an escaped process survived shutdown_kernel()"
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)


@pytest.mark.parametrize("template", [SETSID_CHILD, DAEMON], ids=["setsid-child", "daemon"])
async def test_crash_then_shutdown_leaves_no_escapee(tmp_path: Path, template: str) -> None:
    km = AsyncKernelManager(kernel_spec=_spec())
    await km.start_kernel()
    pids: list[int] = []
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            pids.append(await start_escapee(kc, kernel_pid(km), template, tmp_path / "pid"))
        os.kill(kernel_pid(km), signal.SIGKILL)  # the crash
        assert km.provisioner is not None
        await asyncio.wait_for(km.provisioner.wait(), 10)
        await km.shutdown_kernel()
        assert await gone(pids, within=5), "an escaped process survived the crash and shutdown"
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)
