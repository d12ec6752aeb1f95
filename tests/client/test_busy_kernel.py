"""A busy kernel whose heartbeat shares its one thread is unresponsive, not dead (issue 14.8).

The fake kernel process runs with ``--busy-blocks-heartbeat``: while ``sleep S`` runs,
its heartbeat goes unanswered, as a Node-based kernel's does behind synchronous code.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelkit import HeartbeatTimeout
from kernelkit._connection import ConnectionInfo, new_key, write_connection_file
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import start_new_async_kernel
from kernelkit.testing import fake_kernel_argv, fake_kernel_spec

# A short beat, so five seconds of silence are many missed pings.
BEAT = {"heartbeat_interval": 0.1, "heartbeat_timeout": 0.2}


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
def busy_kernel(tmp_path: Path) -> Iterator[Path]:
    """A fake kernel process (not owned: no manager) that blocks its heartbeat when busy."""
    path = write_connection_file(ConnectionInfo(key=new_key()), tmp_path / "kernel.json")
    argv = [
        a.replace("{connection_file}", str(path))
        for a in fake_kernel_argv("--busy-blocks-heartbeat")
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not json.loads(path.read_text())["shell_port"]:
            assert proc.poll() is None, "the fake kernel exited before binding"
            assert time.monotonic() < deadline, "the fake kernel did not write its ports"
            time.sleep(0.01)
        yield path
    finally:
        proc.kill()
        proc.wait(10)


async def _unresponsive_while(client: AsyncKernelClient, task: asyncio.Task[object]) -> bool:
    """True if the client saw the kernel unresponsive while ``task`` ran."""
    seen = False
    for _ in range(200):
        if task.done():
            break
        seen = seen or client.core.unresponsive
        await asyncio.sleep(0.05)
    return seen


async def test_a_busy_kernel_not_owned_is_unresponsive_not_dead(busy_kernel: Path) -> None:
    async with AsyncKernelClient.from_connection_file(busy_kernel, **BEAT) as client:
        await client.wait_for_ready(20)
        await asyncio.sleep(0.5)  # the heartbeat has answered
        task = asyncio.create_task(client.execute("sleep 5", timeout=60))
        assert await _unresponsive_while(client, task)
        reply = await task
        assert reply.content["status"] == "ok"
        assert not client.core.unresponsive
        assert (await client.execute("1", timeout=20)).content["status"] == "ok"


async def test_a_silent_kernel_not_owned_dies_after_its_silence_timeout(busy_kernel: Path) -> None:
    async with AsyncKernelClient.from_connection_file(
        busy_kernel, silence_timeout=1.0, **BEAT
    ) as client:
        await client.wait_for_ready(20)
        await asyncio.sleep(0.5)
        with pytest.raises(HeartbeatTimeout, match=r"nor send anything for 1 s"):
            await asyncio.wait_for(client.execute("sleep 5", timeout=None), 4.5)


async def test_a_busy_owned_kernel_is_never_declared_dead_by_its_heartbeat() -> None:
    km, kc = await start_new_async_kernel(
        kernel_spec=fake_kernel_spec("--busy-blocks-heartbeat"), startup_timeout=20
    )
    try:
        reply = await kc.execute("sleep 5", timeout=60)
        assert reply.content["status"] == "ok"
    finally:
        await kc.aclose()
        await km.shutdown_kernel(now=True)
