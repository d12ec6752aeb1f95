"""AsyncMultiKernelManager with fake kernels (real processes, raw ZeroMQ, ~0.1 s starts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernelkit import KernelStartError, ManagerError, UnknownKernelId
from kernelkit.manager import AsyncMultiKernelManager
from tests.manager.multi_helpers import ExitClock, alive, broken_spec, fake_spec, pid_of


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    d = tmp_path / "many-runtime"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
async def mkm() -> AsyncIterator[AsyncMultiKernelManager]:
    m = AsyncMultiKernelManager(shutdown_wait_time=2.0)
    try:
        yield m
    finally:
        await m.shutdown_all(now=True)


async def test_start_list_get_shutdown(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    spec = fake_spec(runtime)
    ids = await asyncio.gather(*(mkm.start_kernel(kernel_spec=spec) for _ in range(3)))
    assert len(set(ids)) == 3
    assert sorted(mkm.list_kernel_ids()) == sorted(ids)
    assert len(mkm) == 3
    assert ids[0] in mkm
    assert "nope" not in mkm
    km = mkm.get_kernel(ids[1])
    assert km.kernel_id == ids[1]
    assert km.kernel_name == "fake"
    assert await mkm.is_alive(ids[1])
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        outputs: list = []
        await kc.execute("print hello", outputs=outputs, timeout=10)
        assert [m.content["text"] for m in outputs[1:]] == ["hello\n"]
    pid = pid_of(km)
    await mkm.shutdown_kernel(ids[1])
    assert not alive(pid)
    assert ids[1] not in mkm
    assert len(mkm) == 2
    with pytest.raises(UnknownKernelId) as err:
        mkm.get_kernel(ids[1])
    assert ids[1] in str(err.value)
    assert ids[0] in str(err.value)
    await mkm.shutdown_all()
    assert len(mkm) == 0
    assert mkm.list_kernel_ids() == []


async def test_unknown_id_everywhere(mkm: AsyncMultiKernelManager) -> None:
    for call in (
        lambda: mkm.shutdown_kernel("ghost"),
        lambda: mkm.restart_kernel("ghost"),
        lambda: mkm.interrupt_kernel("ghost"),
        lambda: mkm.is_alive("ghost"),
    ):
        with pytest.raises(UnknownKernelId, match=r"'ghost'.*known ids: none"):
            await call()
    with pytest.raises(LookupError):  # UnknownKernelId is also a LookupError
        mkm.get_kernel("ghost")


async def test_chosen_and_duplicate_ids(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    spec = fake_spec(runtime)
    assert await mkm.start_kernel(kernel_spec=spec, kernel_id="mine") == "mine"
    with pytest.raises(ManagerError, match="already in use"):
        await mkm.start_kernel(kernel_spec=spec, kernel_id="mine")
    with pytest.raises(ManagerError, match="non-empty"):
        await mkm.start_kernel(kernel_spec=spec, kernel_id="")
    assert mkm.list_kernel_ids() == ["mine"]


async def test_same_id_started_twice_at_once(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    spec = fake_spec(runtime)
    results = await asyncio.gather(
        mkm.start_kernel(kernel_spec=spec, kernel_id="twin"),
        mkm.start_kernel(kernel_spec=spec, kernel_id="twin"),
        return_exceptions=True,
    )
    assert results[0] == "twin"
    assert isinstance(results[1], ManagerError)
    assert len(mkm) == 1


async def test_starts_do_not_serialise(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    # Each kernel sleeps 1 s before it binds: one after the other would take >= 4 s.
    spec = fake_spec(runtime, "--start-delay", "1.0")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(mkm.start_kernel(kernel_spec=spec) for _ in range(4)))
    assert loop.time() - t0 < 3.0
    assert len(mkm) == 4


async def test_failed_start_leaves_nothing(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    good = fake_spec(runtime)
    results = await asyncio.gather(
        mkm.start_kernel(kernel_spec=good, kernel_id="good"),
        mkm.start_kernel(kernel_spec=broken_spec(runtime), kernel_id="bad"),
        return_exceptions=True,
    )
    assert results[0] == "good"
    assert isinstance(results[1], KernelStartError)
    assert "exit code 7" in str(results[1])
    assert mkm.list_kernel_ids() == ["good"]
    # The id of a failed start is free again.
    assert await mkm.start_kernel(kernel_spec=good, kernel_id="bad") == "bad"


async def test_restart_and_interrupt_by_id(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    kid = await mkm.start_kernel(kernel_spec=fake_spec(runtime))
    km = mkm.get_kernel(kid)
    old = pid_of(km)
    await mkm.interrupt_kernel(kid)  # SIGINT to its group; the fake kernel ignores it
    assert await mkm.is_alive(kid)
    await mkm.restart_kernel(kid)
    assert pid_of(km) != old
    assert not alive(old)
    assert await mkm.is_alive(kid)
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)


async def test_shutdown_all_in_parallel_with_a_stubborn_kernel(runtime: Path) -> None:
    wait_time = 1.0
    mkm = AsyncMultiKernelManager(shutdown_wait_time=wait_time)
    clock = ExitClock()
    try:
        normal = [await mkm.start_kernel(kernel_spec=fake_spec(runtime)) for _ in range(3)]
        stubborn = await mkm.start_kernel(
            kernel_spec=fake_spec(runtime, "--ignore-term", "--ignore-shutdown")
        )
        pids = {kid: pid_of(mkm.get_kernel(kid)) for kid in [*normal, stubborn]}
        for pid in pids.values():
            clock.watch(pid)
        t0 = clock.loop.time()
        await mkm.shutdown_all()
        total = clock.loop.time() - t0
        for kid in normal:
            assert clock.exited[pids[kid]] - t0 < 0.5, "a well-behaved kernel waited"
        assert clock.exited[pids[stubborn]] - t0 <= wait_time + 0.2
        assert total <= wait_time + 0.2
        assert not any(alive(pid) for pid in pids.values())
        assert len(mkm) == 0
    finally:
        clock.close()
        await mkm.shutdown_all(now=True)


async def test_shutdown_all_waits_for_starts_in_flight(runtime: Path) -> None:
    mkm = AsyncMultiKernelManager()
    spec = fake_spec(runtime, "--start-delay", "0.5")
    start = asyncio.ensure_future(mkm.start_kernel(kernel_spec=spec, kernel_id="late"))
    await asyncio.sleep(0.1)  # the start is under way
    with pytest.raises(ManagerError, match="still starting"):
        mkm.get_kernel("late")
    await mkm.shutdown_all()
    assert await start == "late"
    assert len(mkm) == 0  # started, then shut down by shutdown_all


async def test_context_manager_shuts_everything_down(runtime: Path) -> None:
    async with AsyncMultiKernelManager() as mkm:
        kid = await mkm.start_kernel(kernel_spec=fake_spec(runtime))
        pid = pid_of(mkm.get_kernel(kid))
    assert not alive(pid)
    assert len(mkm) == 0


def test_bad_options() -> None:
    with pytest.raises(ManagerError, match="cull_idle_timeout"):
        AsyncMultiKernelManager(cull_idle_timeout=0)
    with pytest.raises(ManagerError, match="cull_interval"):
        AsyncMultiKernelManager(cull_interval=-1)
    with pytest.raises(ManagerError, match="shutdown_wait_time"):
        AsyncMultiKernelManager(shutdown_wait_time=-1)


# -- culling ----------------------------------------------------------------------------


async def test_culling_spares_busy_kernels(runtime: Path) -> None:
    culled: list[tuple[str, float]] = []
    first = asyncio.Event()
    second = asyncio.Event()

    def on_cull(kernel_id: str, idle_for: float) -> None:
        culled.append((kernel_id, idle_for))
        (second if first.is_set() else first).set()

    mkm = AsyncMultiKernelManager(cull_idle_timeout=0.5, cull_interval=0.1, on_cull=on_cull)
    try:
        spec = fake_spec(runtime)
        busy = await mkm.start_kernel(kernel_spec=spec, kernel_id="busy")
        idle = await mkm.start_kernel(kernel_spec=spec, kernel_id="idle")
        async with mkm.get_kernel(busy).client() as kc:
            await kc.wait_for_ready(timeout=10)
            running = asyncio.ensure_future(kc.execute("sleep 1.5", timeout=10))
            await asyncio.wait_for(first.wait(), 5)
            assert [c[0] for c in culled] == ["idle"]
            assert culled[0][1] > 0.5
            assert busy in mkm
            assert idle not in mkm
            reply = await running  # the busy one ran to the end, untouched
            assert reply.content["status"] == "ok"
        await asyncio.wait_for(second.wait(), 5)  # and is culled once idle long enough
        assert [c[0] for c in culled] == ["idle", "busy"]
        assert len(mkm) == 0
    finally:
        await mkm.shutdown_all(now=True)


async def test_cull_on_demand_and_activity_resets(runtime: Path) -> None:
    mkm = AsyncMultiKernelManager(cull_idle_timeout=0.3, cull_interval=3600)
    try:
        kid = await mkm.start_kernel(kernel_spec=fake_spec(runtime))
        assert await mkm.cull_idle_kernels() == []  # just started: not idle long enough
        async with mkm.get_kernel(kid).client() as kc:
            await kc.wait_for_ready(timeout=10)
            for _ in range(4):  # traffic keeps it alive past the idle timeout
                await asyncio.sleep(0.1)
                await kc.kernel_info(timeout=10)
                assert await mkm.cull_idle_kernels() == []
        await asyncio.sleep(0.4)
        assert await mkm.cull_idle_kernels() == [kid]
        assert kid not in mkm
    finally:
        await mkm.shutdown_all(now=True)


async def test_no_culling_by_default(mkm: AsyncMultiKernelManager, runtime: Path) -> None:
    await mkm.start_kernel(kernel_spec=fake_spec(runtime))
    assert await mkm.cull_idle_kernels() == []
    assert len(mkm) == 1
