"""Many real ipykernels (7.4) at once: one event loop driving 16 kernels under load, 16
blocking clients (thread count), shutdown_all with a kernel that ignores SIGTERM, the warm
pool, and a kernel dying under 8 waiting subshells.

``KERNELKIT_LOAD_N`` sets the executes per kernel of the load test (default 100; the
closing figures use 1000). Every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from kernelkit import ConnectionInfo, KernelDied
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.manager import AsyncKernelPool, AsyncMultiKernelManager
from kernelkit.protocol import Message
from tests.manager.multi_helpers import ExitClock, alive, kernels_in, pid_of

pytestmark = pytest.mark.integration

KERNELS = 16
LOAD_N = int(os.environ.get("KERNELKIT_LOAD_N", "100"))
DEPTH = 4  # executes in flight per kernel
# 16 kernels writing one IPython history database lock it ("database is locked" on stderr).
NO_HISTORY = ("--HistoryManager.enabled=False",)
# Generous: 2 loaded cores. Bounds a hang, not the speed.
LOAD_BUDGET = 120.0 + LOAD_N * 0.5


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "many-runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def drive(index: int, kc: AsyncKernelClient, n: int, counts: dict[str, int]) -> None:
    """``n`` executes, ``DEPTH`` at a time; each prints a unique token that must come
    back as the only output of its own request."""

    async def one(j: int) -> None:
        token = f"tok-{index}-{j}-{uuid.uuid4().hex[:8]}"
        outputs: list[Message] = []
        reply = await kc.execute(f"print({token!r})", outputs=outputs, timeout=120)
        assert reply.content["status"] == "ok", reply.content
        counts["replies"] += 1
        streams = [
            m for m in outputs if m.msg_type == "stream" and m.content.get("name") == "stdout"
        ]
        assert all(m.parent_id == reply.parent_id for m in outputs)
        assert "".join(m.content["text"] for m in streams) == token + "\n"
        counts["outputs"] += 1

    for start in range(0, n, DEPTH):
        await asyncio.gather(*(one(j) for j in range(start, min(start + DEPTH, n))))


def blocking_clients(infos: list[ConnectionInfo | None]) -> tuple[int, int]:
    """Start a blocking client per kernel; the Python and OS threads they added."""
    py_before, os_before = threading.active_count(), os_threads()
    clients = []
    try:
        for info in infos:
            assert info is not None
            kc = KernelClient.from_connection_info(info)
            kc.start()
            clients.append(kc)
        added = threading.active_count() - py_before, os_threads() - os_before
        for kc in clients:
            assert kc.execute("1", timeout=60).content["status"] == "ok"
    finally:
        for kc in clients:
            kc.close()
    return added


@pytest.mark.timeout(LOAD_BUDGET + 180)
async def test_16_kernels_from_one_loop(runtime: Path) -> None:
    wait_time = 3.0
    mkm = AsyncMultiKernelManager(shutdown_wait_time=wait_time)
    clock = ExitClock()
    clients: list[AsyncKernelClient] = []
    py_before, os_before = threading.active_count(), os_threads()
    try:
        ids = await asyncio.wait_for(
            asyncio.gather(
                *(mkm.start_kernel("python3", extra_arguments=NO_HISTORY) for _ in range(KERNELS))
            ),
            120,
        )
        clients = [mkm.get_kernel(k).client() for k in ids]
        for kc in clients:
            await kc.start()
        await asyncio.wait_for(
            asyncio.gather(*(kc.wait_for_ready(timeout=120) for kc in clients)), 130
        )
        # One loop drives 16 kernels: no Python thread per kernel or per channel.
        assert threading.active_count() == py_before
        os_async = os_threads() - os_before

        counts = {"replies": 0, "outputs": 0}
        t0 = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(drive(i, kc, LOAD_N, counts) for i, kc in enumerate(clients))),
            LOAD_BUDGET,
        )
        took = time.perf_counter() - t0
        assert counts == {"replies": KERNELS * LOAD_N, "outputs": KERNELS * LOAD_N}
        print(
            f"\nload: {KERNELS} kernels x {LOAD_N} executes in {took:.2f} s "
            f"({KERNELS * LOAD_N / took:.0f}/s), 0 lost; OS threads added by 16 async "
            f"clients: {os_async}"
        )

        # 16 blocking clients: one loop thread each, nothing per channel. They are used
        # from a plain thread, as blocking code would (not from this event loop).
        infos = [mkm.get_kernel(k).connection_info for k in ids]
        py_added, os_added = await asyncio.to_thread(blocking_clients, infos)
        print(f"16 blocking KernelClients: +{py_added} Python threads, +{os_added} OS threads")
        assert py_added == KERNELS

        # shutdown_all with one kernel that ignores SIGTERM and hangs on its way out.
        stubborn = ids[0]
        await clients[0].execute(
            "import atexit, signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "atexit.register(time.sleep, 120)",
            timeout=60,
        )
        pids = {k: pid_of(mkm.get_kernel(k)) for k in ids}
        for pid in pids.values():
            clock.watch(pid)
        for kc in clients:
            await kc.aclose()
        t0 = clock.loop.time()
        await asyncio.wait_for(mkm.shutdown_all(), wait_time + 30)
        others = max(clock.exited[pids[k]] - t0 for k in ids if k != stubborn)
        last = clock.exited[pids[stubborn]] - t0
        print(f"shutdown_all: 15 kernels gone within {others:.2f} s, the stubborn one {last:.2f} s")
        # The precise bound (wait time + 0.2 s) is tested with fake kernels in
        # tests/manager/test_multi.py; here, on loaded CI cores, it shows the kernels were
        # stopped in parallel: one after the other would take several wait times.
        assert last <= wait_time + 1.0
        assert others <= last
        assert not any(alive(pid) for pid in pids.values())
    finally:
        clock.close()
        for kc in clients:
            await kc.aclose()
        await mkm.shutdown_all(now=True)
    assert kernels_in(runtime) == []


@pytest.mark.timeout(180)
async def test_pool_of_ipykernels(runtime: Path) -> None:
    pool = AsyncKernelPool("python3", size=2, ready_timeout=120)
    handed = []
    try:
        await pool.start(timeout=150)
        t0 = time.perf_counter()
        first = await pool.acquire(timeout=60)
        took = time.perf_counter() - t0
        handed.append(first)
        print(f"\npool: acquire from a full pool took {took * 1000:.2f} ms")
        assert took < 0.25  # no start in the way (the bench measures the real figure)
        reply = await first.client.execute("x = 'used'", timeout=60)
        assert reply.content["status"] == "ok"

        # A warm kernel killed while idle is never handed out, and is replaced.
        await pool.start(timeout=150)
        warm = [pid for pid in kernels_in(runtime) if pid != pid_of(first.manager)]
        assert len(warm) == 2
        victim = warm[0]
        pidfd = os.pidfd_open(victim)
        os.killpg(victim, signal.SIGKILL)
        assert select.select([pidfd], [], [], 10)[0]
        os.close(pidfd)
        for _ in range(2):
            handed.append(await pool.acquire(timeout=120))
        assert victim not in {pid_of(k.manager) for k in handed}
        # Fresh state: no kernel saw the first one's variable.
        for kernel in handed[1:]:
            reply = await kernel.client.execute("x", timeout=60)
            assert reply.content["status"] == "error"
            assert reply.content["ename"] == "NameError"
    finally:
        await asyncio.gather(*(k.aclose(now=True) for k in handed))
        await pool.aclose(now=True)
    assert kernels_in(runtime) == []


@pytest.mark.timeout(120)
async def test_kernel_death_fails_8_waiting_subshells_promptly(runtime: Path) -> None:
    mkm = AsyncMultiKernelManager(autorestart=False)
    try:
        kid = await mkm.start_kernel("python3")
        km = mkm.get_kernel(kid)
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            subshells = [await kc.create_subshell(timeout=30) for _ in range(8)]
            started = asyncio.Event()
            sub_ids = {sub.subshell_id for sub in subshells}
            running: set[str] = set()

            def on_iopub(msg: Message) -> None:
                parent = msg.parent_header
                if msg.msg_type == "stream" and parent and parent.subshell_id in sub_ids:
                    running.add(parent.subshell_id)
                    if running == sub_ids:
                        started.set()

            kc.add_iopub_handler(on_iopub)
            loop = asyncio.get_running_loop()
            tasks = [
                loop.create_task(
                    sub.execute("import time; print('in', flush=True); time.sleep(60)")
                )
                for sub in subshells
            ]
            await asyncio.wait_for(started.wait(), 30)  # all 8 run at once
            t0 = time.perf_counter()
            os.killpg(pid_of(km), signal.SIGKILL)
            done, pending = await asyncio.wait(tasks, timeout=5)
            elapsed = time.perf_counter() - t0
            assert not pending
            for task in done:
                assert isinstance(task.exception(), KernelDied)
            print(f"\n8 waiting subshell requests failed {elapsed * 1000:.0f} ms after the kill")
            assert elapsed < 2.0
    finally:
        await mkm.shutdown_all(now=True)
    assert kernels_in(runtime) == []
