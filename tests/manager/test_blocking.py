"""KernelManager (the blocking twin) with the fake kernel; and a connection file that lies."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from kernelkit import KernelDied, KernelError, KernelStartError, KernelTimeout, ManagerError
from kernelkit._connection import allocate_ports, new_key
from kernelkit.client import KernelClient
from kernelkit.manager import KernelManager, start_new_kernel

from .conftest import fake_spec, files_in, gone


def kernel_pid(km: KernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


def test_with_block_starts_runs_and_stops(runtime_dir: Path) -> None:
    threads = threading.active_count()
    with KernelManager(kernel_spec=fake_spec()) as km:
        assert km.state == "running"
        assert km.is_alive()
        pid = kernel_pid(km)
        with km.client() as kc:
            kc.wait_for_ready(timeout=10)
            # One loop thread, the manager's, which the client shares (plus, once per
            # process, pyzmq's I/O thread, which is not a Python thread).
            assert threading.active_count() == threads + 1
            assert kc.loop_thread is km.loop_thread
            reply = kc.execute("result 7", timeout=10)
            assert reply.content["status"] == "ok"
        t0 = time.monotonic()
        km.shutdown_kernel()
        assert time.monotonic() - t0 < 1.0
        assert not km.is_alive()
    assert km.closed
    assert gone(pid)
    assert files_in(runtime_dir) == []
    assert threading.active_count() == threads


def test_restart_interrupt_and_death(runtime_dir: Path) -> None:
    died: list[tuple[KernelError, str]] = []
    dead = threading.Event()

    def on_dead(error: KernelError) -> None:
        died.append((error, threading.current_thread().name))
        dead.set()

    km = KernelManager(kernel_spec=fake_spec("--say=blocking"), autorestart=False, on_dead=on_dead)
    try:
        km.start_kernel()
        first = kernel_pid(km)
        with km.client() as kc:
            kc.wait_for_ready(timeout=10)
            km.restart_kernel()
            assert kernel_pid(km) != first
            kc.wait_for_ready(timeout=10)

            # Interrupt a busy kernel from another thread.
            timer = threading.Timer(0.3, km.interrupt_kernel)
            timer.start()
            reply = kc.execute("sleep 30", timeout=10)
            timer.join()
            assert reply.content["ename"] == "KeyboardInterrupt"

            # SIGKILL mid-execute: the blocking call fails within a second.
            threading.Timer(0.3, os.kill, (kernel_pid(km), signal.SIGKILL)).start()
            t0 = time.monotonic()
            with pytest.raises(KernelDied) as info:
                kc.execute("sleep 30")
            assert time.monotonic() - t0 < 1.3
            assert info.value.exit_code == -9
            assert "blocking" in info.value.output_tail
        assert dead.wait(5)
        assert km.state == "dead"
        assert [e for e, _ in died] == [info.value]
        assert died[0][1].startswith("kernelkit-manager-")  # callbacks run on the loop thread
    finally:
        km.close()
    assert files_in(runtime_dir) == []


def test_a_client_outlives_its_manager_and_may_close_from_a_callback(runtime_dir: Path) -> None:
    threads = threading.active_count()
    km = KernelManager(kernel_spec=fake_spec(), autorestart=False)
    km.start_kernel()
    kc = km.client()
    kc.start()
    kc.wait_for_ready(timeout=10)
    closed_on_loop: list[bool] = []
    called = threading.Event()

    def close_client(error: KernelError) -> None:
        # On the shared loop thread: close() cannot wait here; it finishes on the loop.
        kc.close()
        closed_on_loop.append(kc.closed)
        called.set()

    km.add_restart_callback(close_client, "dead")
    other = km.client()
    other.start()
    os.kill(kernel_pid(km), signal.SIGKILL)
    with pytest.raises(KernelDied):
        other.execute("sleep 30")
    assert called.wait(5)
    assert closed_on_loop == [True]
    km.close()
    # The manager is closed; its thread stays for the client still open.
    assert threading.active_count() == threads + 1
    with pytest.raises(KernelDied):
        other.kernel_info()
    other.close()
    assert threading.active_count() == threads
    assert files_in(runtime_dir) == []


def test_blocking_client_follows_a_restart_onto_new_ports(runtime_dir: Path) -> None:
    with KernelManager(kernel_spec=fake_spec(), autorestart=False) as km, km.client() as kc:
        kc.wait_for_ready(timeout=10)
        old = km.connection_info
        assert old is not None
        km.shutdown_kernel(restart=True)
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((old.ip, old.control_port))
            squatter.listen()
            km.start_kernel()
        new = km.connection_info
        assert new is not None
        assert new.control_port != old.control_port
        kc.wait_for_ready(timeout=10)
        assert kc.execute("result 7", timeout=10).content["status"] == "ok"
        assert kc.shutdown(timeout=10).msg_type == "shutdown_reply"  # control moved too


def test_misuse(runtime_dir: Path) -> None:
    km = KernelManager(kernel_spec=fake_spec())
    with pytest.raises(ManagerError, match="call start_kernel"):
        km.client()
    km.shutdown_kernel()  # nothing to do
    assert not km.is_alive()
    km.close()
    km.close()
    with pytest.raises(ManagerError, match="closed"):
        km.start_kernel()


def test_failed_start_in_with_leaves_no_thread(runtime_dir: Path) -> None:
    threads = threading.active_count()
    with pytest.raises(KernelStartError), KernelManager(kernel_spec=fake_spec("--exit-at-start=3")):
        pass
    assert threading.active_count() == threads
    assert files_in(runtime_dir) == []


def test_start_new_kernel_and_its_failures(runtime_dir: Path) -> None:
    km, kc = start_new_kernel(kernel_spec=fake_spec(), startup_timeout=10)
    try:
        assert kc.kernel_info_reply is not None
    finally:
        kc.close()
        km.close()
    with pytest.raises(KernelStartError) as info:
        start_new_kernel(kernel_spec=fake_spec("--exit-at-start=3"))
    assert info.value.exit_code == 3
    with pytest.raises(KernelTimeout, match="did not become ready"):
        start_new_kernel(kernel_spec=fake_spec("--mute"), startup_timeout=0.5)
    assert files_in(runtime_dir) == []


def test_connection_file_that_lies_times_out(tmp_path: Path) -> None:
    """Ports that point nowhere: a clear timeout, not a hang."""
    ports = allocate_ports(5)
    path = tmp_path / "kernel-lies.json"
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info: dict[str, object] = dict(zip(names, ports, strict=True))
    info.update(ip="127.0.0.1", key=new_key().decode(), transport="tcp")
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    with KernelClient.from_connection_file(path) as kc:
        t0 = time.monotonic()
        with pytest.raises(KernelTimeout, match=r"not ready within 0\.5 s"):
            kc.wait_for_ready(timeout=0.5)
        with pytest.raises(KernelTimeout):
            kc.execute("1", timeout=0.3)
        assert time.monotonic() - t0 < 2.0


async def test_close_from_async_code(runtime_dir: Path) -> None:
    """A blocking manager used (and closed) from a thread that runs an event loop."""
    km = KernelManager(kernel_spec=fake_spec())
    km.start_kernel()
    pid = kernel_pid(km)
    km.close()
    assert gone(pid)
    assert files_in(runtime_dir) == []
