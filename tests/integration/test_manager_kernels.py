"""The kernel manager with real kernels: ipykernel 7.4 (port-0 write-back), xeus-python 0.19
(JEP 66 registration), bash_kernel (a non-Python kernel), from this environment's specs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from kernelkit import KernelDied, KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager, KernelManager, start_new_async_kernel
from kernelkit.protocol import Message
from kernelkit.specs import KernelSpec, load_kernel_spec

pytestmark = pytest.mark.integration

KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"


def spec(name: str) -> KernelSpec:
    loaded = load_kernel_spec(KERNELS / name)
    assert loaded.healthy, loaded.problems
    return loaded


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def pid_of(km: AsyncKernelManager | KernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def run(kc: AsyncKernelClient, code: str) -> str:
    """Execute; return the text of stdout streams and text/plain results."""
    outputs: list[Message] = []
    reply = await kc.execute(code, outputs=outputs, timeout=30)
    assert reply.content["status"] == "ok", reply.content
    parts = []
    for msg in outputs:
        if msg.msg_type == "stream" and msg.content.get("name") == "stdout":
            parts.append(msg.content["text"])
        elif msg.msg_type == "execute_result":
            parts.append(msg.content["data"]["text/plain"] + "\n")
    return "".join(parts)


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("python3", "print('hi'); 6 * 7", "hi\n42\n"),
        ("xpython", "print('hi')", "hi\n"),
        ("bash", "echo hi", "hi\n"),
    ],
)
async def test_start_run_restart_shutdown(
    name: str, code: str, expected: str, runtime_dir: Path
) -> None:
    km, kc = await start_new_async_kernel(kernel_spec=spec(name), startup_timeout=60)
    try:
        first = pid_of(km)
        assert await run(kc, code) == expected
        info = km.connection_info
        await km.restart_kernel()
        assert km.connection_info == info  # the old ports again: the client follows
        await kc.wait_for_ready(timeout=60)
        assert await run(kc, code) == expected
        assert not alive(first)
    finally:
        await kc.aclose()
        await km.shutdown_kernel()
    assert not alive(pid_of(km))
    assert files_in(runtime_dir) == []


async def test_ipykernel_interrupt_and_two_clients() -> None:
    km, kc = await start_new_async_kernel(kernel_spec=spec("python3"))
    try:
        async with km.client() as other:
            await other.wait_for_ready(timeout=30)
            a, b = await asyncio.gather(run(kc, "'from a'"), run(other, "'from b'"))
            assert (a, b) == ("'from a'\n", "'from b'\n")
        # Interrupt once the cell itself runs (its own output): ipykernel drops the reply
        # of a cell interrupted between execute_input and running it.
        running = asyncio.Event()
        busy = asyncio.ensure_future(
            kc.execute_interactive(
                "import time; print('in', flush=True); time.sleep(30)",
                output_hook=lambda m: running.set() if m.msg_type == "stream" else None,
                timeout=30,
            )
        )
        await asyncio.wait_for(running.wait(), 20)
        t0 = time.monotonic()
        await km.interrupt_kernel()
        reply = await busy
        assert time.monotonic() - t0 < 5
        assert reply.content["ename"] == "KeyboardInterrupt"
    finally:
        await kc.aclose()
        await km.shutdown_kernel()


async def test_ipykernel_sigkill_mid_execute_then_auto_restart(runtime_dir: Path) -> None:
    died: list[float] = []
    restarted = asyncio.Event()
    km = AsyncKernelManager(
        kernel_spec=spec("python3"),
        on_died=lambda e: died.append(time.monotonic()),
        on_restarted=lambda e: restarted.set(),
    )
    await km.start_kernel()
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            await run(kc, "print('kernel says hi', flush=True)")
            busy = asyncio.ensure_future(kc.execute("import time; time.sleep(30)"))  # no timeout
            await asyncio.sleep(0.3)
            first = pid_of(km)
            t0 = time.monotonic()
            os.kill(first, signal.SIGKILL)
            with pytest.raises(KernelDied) as info:
                await busy
            assert time.monotonic() - t0 < 1.0
            assert info.value.exit_code == -9
            assert info.value.output_tail  # ipykernel's own start-up lines
            await asyncio.wait_for(restarted.wait(), 60)
            assert died[0] - t0 < 0.5  # noticed at the exit, not by a poll
            await kc.wait_for_ready(timeout=60)
            assert await run(kc, "1 + 1") == "2\n"
            assert pid_of(km) != first
    finally:
        await km.shutdown_kernel()
    assert files_in(runtime_dir) == []


async def test_ipykernel_ignoring_sigterm_is_gone_within_wait_time(runtime_dir: Path) -> None:
    wait_time = 2.0
    km = AsyncKernelManager(kernel_spec=spec("python3"), shutdown_wait_time=wait_time)
    await km.start_kernel()
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        # Answers shutdown_request, then hangs at exit; SIGTERM is ignored: only SIGKILL works.
        await run(
            kc,
            "import atexit, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "atexit.register(time.sleep, 60)",
        )
    pid = pid_of(km)
    t0 = time.monotonic()
    await km.shutdown_kernel()
    elapsed = time.monotonic() - t0
    assert elapsed <= wait_time + 0.2, elapsed
    assert not alive(pid)
    assert files_in(runtime_dir) == []


async def test_shutdown_stops_a_child_in_its_own_session() -> None:
    km, kc = await start_new_async_kernel(kernel_spec=spec("python3"))
    try:
        text = await run(
            kc,
            "import subprocess; subprocess.Popen(['sleep', '300'], start_new_session=True).pid",
        )
        child = int(text)
    finally:
        await kc.aclose()
        await km.shutdown_kernel()
    try:
        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_blocking_manager_with_ipykernel(runtime_dir: Path) -> None:
    threads = threading.active_count()
    with KernelManager(kernel_spec=spec("python3")) as km, km.client() as kc:
        kc.wait_for_ready(timeout=60)
        assert threading.active_count() == threads + 1  # the manager's loop, shared by the client
        outputs: list[Message] = []
        kc.execute("print('blocking')", outputs=outputs, timeout=30)
        assert [m.content["text"] for m in outputs if m.msg_type == "stream"] == ["blocking\n"]
        km.restart_kernel()
        kc.wait_for_ready(timeout=60)
        assert kc.execute("1", timeout=30).content["status"] == "ok"
    assert threading.active_count() == threads
    assert files_in(runtime_dir) == []


async def test_client_after_the_kernel_died_fails_at_once() -> None:
    km = AsyncKernelManager(kernel_spec=spec("python3"), autorestart=False)
    dead = asyncio.Event()
    km.add_restart_callback(lambda e: dead.set(), "dead")
    await km.start_kernel()
    try:
        os.kill(pid_of(km), signal.SIGKILL)
        await asyncio.wait_for(dead.wait(), 10)
        async with km.client() as kc:
            with pytest.raises(KernelError, match="killed by signal 9"):
                await kc.kernel_info(timeout=10)
    finally:
        await km.shutdown_kernel()
