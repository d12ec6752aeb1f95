"""AsyncKernelPool with fake kernels (real processes, raw ZeroMQ, ~0.1 s starts)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kernelkit import KernelStartError, ManagerError, PoolExhausted
from kernelkit.manager import AsyncKernelPool, AsyncPooledKernel
from tests.manager.multi_helpers import alive, broken_spec, fake_spec, kernels_in, pid_of


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    d = tmp_path / "pool-runtime"
    d.mkdir(mode=0o700)
    return d


async def until(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait (bounded) for a condition the pool reaches on its own."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.02)


def replaced(pids: list[int], old: int) -> bool:
    """One kernel process runs, and it is not ``old`` (one /proc scan: no race)."""
    return len(pids) == 1 and pids[0] != old


async def test_acquire_hands_out_ready_kernels_and_refills(runtime: Path) -> None:
    pool = AsyncKernelPool(fake_spec(runtime), size=2)
    try:
        await pool.start(timeout=20)
        assert pool.ready_count() == 2
        assert pool.size() == 2
        first = set(kernels_in(runtime))
        assert len(first) == 2
        t0 = time.perf_counter()
        kernel = await pool.acquire(timeout=5)
        took = time.perf_counter() - t0
        assert isinstance(kernel, AsyncPooledKernel)
        assert took < 0.5  # a ready kernel: no start (the bench measures the real figure)
        pid = pid_of(kernel.manager)
        assert pid in first
        async with kernel:
            outputs: list = []
            await kernel.client.execute("print fresh", outputs=outputs, timeout=10)
            assert [m.content["text"] for m in outputs[1:]] == ["fresh\n"]
            # The pool forgot it and starts a replacement at once.
            await pool.start(timeout=20)
            assert pool.ready_count() == 2
            assert len(kernels_in(runtime)) == 3
        assert not alive(pid)
        assert len(kernels_in(runtime)) == 2
    finally:
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_a_kernel_is_handed_out_once(runtime: Path) -> None:
    async with AsyncKernelPool(fake_spec(runtime), size=1) as pool:
        got: list[AsyncPooledKernel] = []
        try:
            for _ in range(4):
                got.append(await pool.acquire(timeout=20))
            assert len({k.kernel_id for k in got}) == 4
            assert len({pid_of(k.manager) for k in got}) == 4
        finally:
            await asyncio.gather(*(k.aclose(now=True) for k in got))
    assert kernels_in(runtime) == []


async def test_a_kernel_that_dies_in_the_pool_is_replaced_never_handed_out(
    runtime: Path,
) -> None:
    pool = AsyncKernelPool(fake_spec(runtime), size=2)
    handed: list[AsyncPooledKernel] = []
    try:
        await pool.start(timeout=20)
        victim, survivor = sorted(kernels_in(runtime))
        pidfd = os.pidfd_open(victim)
        os.killpg(victim, signal.SIGKILL)
        # Block the loop until the process has exited, so the pool cannot have heard of
        # the death through its event yet: the check at hand-out must catch it.
        assert select.select([pidfd], [], [], 5)[0]
        os.close(pidfd)
        handed.append(await pool.acquire(timeout=20))
        handed.append(await pool.acquire(timeout=20))
        pids = {pid_of(k.manager) for k in handed}
        assert victim not in pids
        assert survivor in pids
        await pool.start(timeout=20)  # and the pool refills
        assert pool.ready_count() == 2
    finally:
        await asyncio.gather(*(k.aclose(now=True) for k in handed))
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_death_while_idle_is_noticed_without_an_acquire(runtime: Path) -> None:
    async with AsyncKernelPool(fake_spec(runtime), size=1) as pool:
        await pool.start(timeout=20)
        [victim] = kernels_in(runtime)
        os.killpg(victim, signal.SIGKILL)
        await until(
            lambda: replaced(kernels_in(runtime), victim) and pool.ready_count() == 1,
            "the dead kernel replaced",
        )
        kernel = await pool.acquire(timeout=0)
        assert pid_of(kernel.manager) != victim
        await kernel.aclose(now=True)
    assert kernels_in(runtime) == []


async def test_more_than_the_limit_waits_then_pool_exhausted(runtime: Path) -> None:
    # Slow starts (0.8 s) and room for one kernel: a second caller cannot be served.
    spec = fake_spec(runtime, "--start-delay", "0.8")
    pool = AsyncKernelPool(spec, size=0, max_total=1)
    first = asyncio.ensure_future(pool.acquire(timeout=20))
    try:
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        with pytest.raises(PoolExhausted, match=r"within 0.3 s.*max_total 1") as err:
            await pool.acquire(timeout=0.3)
        assert 0.25 < time.monotonic() - t0 < 1.0
        assert "'fake'" in str(err.value)
        # timeout=0: only a ready kernel, never a wait.
        with pytest.raises(PoolExhausted):
            await pool.acquire(timeout=0)
        kernel = await first
        await kernel.aclose(now=True)
    finally:
        first.cancel()
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_a_kernel_whose_caller_gave_up_does_not_leak(runtime: Path) -> None:
    pool = AsyncKernelPool(fake_spec(runtime, "--start-delay", "0.5"), size=0)
    try:
        with pytest.raises(PoolExhausted):
            await pool.acquire(timeout=0.1)
        assert pool.total == 1  # still starting
        await until(lambda: pool.total == 0, "the unwanted kernel stopped")
        await until(lambda: kernels_in(runtime) == [], "its process gone")
    finally:
        await pool.aclose()


async def test_cancelled_acquire_keeps_the_kernel_in_the_pool(runtime: Path) -> None:
    pool = AsyncKernelPool(fake_spec(runtime, "--start-delay", "0.3"), size=1)
    try:
        waiting = asyncio.ensure_future(pool.acquire(timeout=20))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Two starts were under way (the caller's and the refill): one stays, one stops.
        await until(lambda: pool.total == 1 and pool.ready_count() == 1, "one kept")
        await until(lambda: len(kernels_in(runtime)) == 1, "the extra one stopped")
    finally:
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_max_age_recycles_warm_kernels(runtime: Path) -> None:
    async with AsyncKernelPool(fake_spec(runtime), size=1, max_age=0.4) as pool:
        await pool.start(timeout=20)
        [old] = kernels_in(runtime)
        await until(
            lambda: replaced(kernels_in(runtime), old) and pool.ready_count() == 1,
            "a recycle",
        )
        kernel = await pool.acquire(timeout=0)
        assert pid_of(kernel.manager) != old
        await kernel.aclose(now=True)
    assert kernels_in(runtime) == []


async def test_two_types_and_room_made_for_a_waiting_caller(runtime: Path) -> None:
    a = fake_spec(runtime, name="a")
    b = fake_spec(runtime, name="b")
    pool = AsyncKernelPool(max_total=2)
    pool.set_size(a, 2)
    try:
        await pool.start(timeout=20)
        assert pool.ready_count(a) == 2
        assert pool.ready_count(b) == 0
        kernel = await pool.acquire(b, timeout=20)  # stops an idle "a" to make room
        assert kernel.kernel_name == "b"
        await kernel.aclose(now=True)
        await pool.start(timeout=20)
        assert pool.ready_count(a) == 2
        assert pool.total == 2
        pool.set_size(a, 1)  # extra ones stop
        assert pool.ready_count(a) == 1
    finally:
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_start_failures_reach_the_caller(runtime: Path) -> None:
    pool = AsyncKernelPool(broken_spec(runtime), size=1)
    try:
        with pytest.raises(KernelStartError, match="exit code 7"):
            await pool.start(timeout=20)
        with pytest.raises(KernelStartError, match="exit code 7"):
            await pool.acquire(timeout=20)
    finally:
        await pool.aclose()
    assert kernels_in(runtime) == []


async def test_close_fails_waiters_and_stops_everything_in_parallel(runtime: Path) -> None:
    pool = AsyncKernelPool(fake_spec(runtime, "--ignore-shutdown"), size=3, shutdown_wait_time=1.0)
    await pool.start(timeout=20)
    slow = fake_spec(runtime, "--start-delay", "5", name="slow")
    waiting = asyncio.ensure_future(pool.acquire(slow, timeout=20))
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await pool.aclose()
    # Three kernels that each need their whole wait time: in parallel, not 3 s.
    assert time.monotonic() - t0 < 1.0 + 0.5
    with pytest.raises(ManagerError, match="closed while waiting"):
        await waiting
    assert kernels_in(runtime) == []
    assert pool.closed
    await pool.aclose()  # again: nothing to do
    with pytest.raises(ManagerError, match="closed"):
        await pool.acquire(timeout=0)


async def test_bad_options_and_names(runtime: Path) -> None:
    with pytest.raises(ManagerError, match="max_total"):
        AsyncKernelPool("x", max_total=0)
    with pytest.raises(ManagerError, match="max_age"):
        AsyncKernelPool("x", max_age=0)
    with pytest.raises(ManagerError, match="ready_timeout"):
        AsyncKernelPool("x", ready_timeout=0)
    with pytest.raises(ManagerError, match="size"):
        AsyncKernelPool("x", size=-1)
    with pytest.raises(ManagerError, match="size needs a kernel_name"):
        AsyncKernelPool(size=2)
    pool = AsyncKernelPool()
    with pytest.raises(ManagerError, match="no default kernel type"):
        await pool.acquire()
    with pytest.raises(ManagerError, match="kernel type"):
        pool.set_size("", 1)
    await pool.aclose()
