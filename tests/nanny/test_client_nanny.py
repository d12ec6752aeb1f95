"""A client made from the connection file of a kernel under a nanny subscribes to it: the
kernel's death fails its requests at once (exit status, last output), and a restart asked
by another process is followed."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernelkit import KernelDied, KernelError
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import AsyncAttachedKernel, NannyProvisioner
from tests.nanny.helpers import gone, kill_all, nanny_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MARKER = "kernelkit_last_words_3b9a"
# Written to the process's own stderr (the nanny keeps it), then a long sleep.
SLEEP = f"import os, time; os.write(2, b'{MARKER}\\n'); time.sleep(60)"


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture(params=["auto", "curve"])
async def km(request: pytest.FixtureRequest) -> AsyncIterator[AsyncKernelManager]:
    km = AsyncKernelManager(kernel_spec=nanny_spec(control_encryption=request.param))
    await km.start_kernel()
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        yield km
    finally:
        await km.shutdown_kernel(now=True)
        assert await gone(pids, within=15)
        kill_all(pids)


def _kernel_pid(km: AsyncKernelManager) -> int:
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    assert p.pid is not None
    return p.pid


async def test_sigkill_fails_a_pending_request_at_once(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    # No heartbeat verdict for 30 s: what tells the client is the nanny.
    kc = AsyncKernelClient.from_connection_file(km.connection_file, silence_timeout=30.0)
    async with kc:
        await kc.wait_for_ready(timeout=60)
        pending = asyncio.ensure_future(kc.execute(SLEEP, timeout=60))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        os.kill(_kernel_pid(km), signal.SIGKILL)
        with pytest.raises(KernelDied) as err:
            await asyncio.wait_for(pending, 10)
        elapsed = time.monotonic() - t0
        print(
            f"SIGKILL -> KernelDied in a client from the connection file: {elapsed * 1000:.1f} ms"
        )
        assert elapsed < 5  # the goal is 1 s: generous for a busy machine
        assert err.value.exit_code == -signal.SIGKILL
        assert any(MARKER in line for line in err.value.output_tail)
        with pytest.raises(KernelDied):  # new requests fail at once too
            await kc.kernel_info(timeout=30)


async def test_the_blocking_client_is_told_too(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    path, pid = km.connection_file, _kernel_pid(km)

    def run() -> tuple[float, KernelDied]:
        with KernelClient.from_connection_file(path, silence_timeout=30.0) as kc:
            kc.wait_for_ready(timeout=60)
            timer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
            timer.start()
            try:
                kc.execute(SLEEP, timeout=60)
            except KernelDied as exc:
                return time.monotonic(), exc
            finally:
                timer.cancel()
        raise AssertionError("the request did not fail")

    t0 = time.monotonic()
    t1, err = await asyncio.to_thread(run)
    assert t1 - t0 < 30
    assert err.exit_code == -signal.SIGKILL


async def test_a_restart_by_another_process_is_followed(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    async with AsyncKernelClient.from_connection_file(km.connection_file) as kc:
        await kc.wait_for_ready(timeout=60)
        await kc.execute("x = 1", timeout=30)
        pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)", timeout=60))
        await asyncio.sleep(0.3)
        async with AsyncAttachedKernel.from_connection_file(km.connection_file) as k:
            await k.restart_kernel(grace=0.5)
        with pytest.raises(KernelError, match="restarted"):
            await asyncio.wait_for(pending, 20)
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute("'x' in globals()", timeout=30)
        assert reply.content["status"] == "ok"
        assert kc.dead_error is None


async def test_without_watch_nanny_the_nanny_is_not_asked(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    kc = AsyncKernelClient.from_connection_file(km.connection_file, watch_nanny=False)
    assert kc._nanny is None
    async with AsyncKernelClient.from_connection_file(km.connection_file) as kc:
        assert kc._nanny is not None
        task = kc._nanny.subscribed
        assert task is not None
        await asyncio.wait_for(task, 30)  # subscribed, without an error
        assert kc._nanny._control is not None
        assert kc._nanny._control.broken is None
