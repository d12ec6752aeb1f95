"""MultiKernelManager and KernelPool (blocking faces, one loop thread each)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kernelkit import ManagerError, PoolExhausted, UnknownKernelId
from kernelkit.manager import (
    KernelPool,
    ManagedKernel,
    MultiKernelManager,
    PooledKernel,
)
from tests.manager.multi_helpers import alive, fake_spec, kernels_in


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    d = tmp_path / "blocking-runtime"
    d.mkdir(mode=0o700)
    return d


def kernelkit_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("kernelkit-"))


def test_multi_kernel_manager_blocking(runtime: Path) -> None:
    before = threading.active_count()
    spec = fake_spec(runtime)
    with MultiKernelManager(shutdown_wait_time=2.0) as mkm:
        ids = mkm.start_kernels(3, kernel_spec=spec)
        one = mkm.start_kernel(kernel_spec=spec, kernel_id="one")
        assert one == "one"
        assert sorted(mkm.list_kernel_ids()) == sorted([*ids, "one"])
        assert len(mkm) == 4
        assert "one" in mkm
        # Four kernels, one thread.
        assert threading.active_count() == before + 1
        kernel = mkm.get_kernel("one")
        assert isinstance(kernel, ManagedKernel)
        assert kernel.is_alive()
        assert kernel.kernel_name == "fake"
        with kernel.client() as kc:
            reply = kc.execute("print hi", timeout=10)
            assert reply.content["status"] == "ok"
        mkm.interrupt_kernel("one")
        mkm.restart_kernel("one")
        assert mkm.is_alive("one")
        mkm.shutdown_kernel("one")
        with pytest.raises(UnknownKernelId, match="'one'"):
            mkm.get_kernel("one")
        assert len(kernels_in(runtime)) == 3
    assert kernels_in(runtime) == []
    assert mkm.closed
    assert threading.active_count() == before
    with pytest.raises(ManagerError, match="closed"):
        mkm.start_kernel(kernel_spec=spec)


def test_sixteen_clients_share_the_one_thread(runtime: Path) -> None:
    before = threading.active_count()
    with MultiKernelManager(shutdown_wait_time=2.0) as mkm:
        ids = mkm.start_kernels(2, kernel_spec=fake_spec(runtime))
        clients = [mkm.get_kernel(ids[i % 2]).client() for i in range(16)]
        try:
            for kc in clients:
                kc.start()
            for kc in clients:
                assert kc.execute("print hi", timeout=10).content["status"] == "ok"
            assert threading.active_count() == before + 1
            assert {kc.loop_thread for kc in clients} == {mkm.loop_thread}
        finally:
            for kc in clients:
                kc.close()
    assert threading.active_count() == before


def test_blocking_pool(runtime: Path) -> None:
    before = threading.active_count()
    pool = KernelPool(fake_spec(runtime), size=1)
    try:
        pool.start(timeout=20)
        assert pool.ready_count() == 1
        kernel = pool.acquire(timeout=10)
        assert isinstance(kernel, PooledKernel)
        pid = kernel.manager.provisioner.pid  # type: ignore[union-attr]
        assert threading.active_count() == before + 1
        assert kernel.client.loop_thread is pool.loop_thread
        with kernel:
            outputs: list = []
            kernel.client.execute("print pooled", outputs=outputs, timeout=10)
            assert [m.content["text"] for m in outputs[1:]] == ["pooled\n"]
            pool.start(timeout=20)  # refilled meanwhile
            assert pool.ready_count() == 1
        assert not alive(pid)
        with pytest.raises(PoolExhausted):
            pool.acquire("other-type-never-started", timeout=0)
        # The pool's thread, and nothing else: the client shared it.
        assert threading.active_count() == before + 1
    finally:
        pool.close()
    assert kernels_in(runtime) == []
    assert threading.active_count() == before


def test_blocking_pool_thread_outlives_close_for_kernels_still_out(runtime: Path) -> None:
    before = threading.active_count()
    with KernelPool(fake_spec(runtime), size=1) as pool:
        kernel = pool.acquire(timeout=20)
    # The pool is closed; the kernel handed out still runs, driven by the pool's thread.
    assert kernel.manager.is_alive()
    reply = kernel.client.execute("print still here", timeout=10)
    assert reply.content["status"] == "ok"
    assert "kernelkit-kernel-pool" in kernelkit_threads()
    kernel.close()
    assert kernels_in(runtime) == []
    assert threading.active_count() == before
    with pytest.raises(ManagerError, match="closed"):
        pool.acquire(timeout=0)


async def test_blocking_faces_close_from_a_thread_running_a_loop(runtime: Path) -> None:
    # Blocking objects used (briefly) from async code: close() must still work here.
    mkm = MultiKernelManager()
    mkm.start_kernel(kernel_spec=fake_spec(runtime), kernel_id="k")
    mkm.close()
    pool = KernelPool(fake_spec(runtime), size=0)
    pool.close()
    assert kernels_in(runtime) == []
    assert "kernelkit-multi-kernel-manager" not in kernelkit_threads()
