"""KernelClient (blocking) over the in-memory transport: its loop thread, hooks, lifecycle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kernelkit import (
    ClientClosed,
    ExecutionError,
    HeartbeatTimeout,
    KernelDied,
    KernelError,
    KernelTimeout,
    UnsupportedFeature,
)
from kernelkit._connection import ConnectionInfo, allocate_ports, write_connection_file
from kernelkit._loopthread import LoopThread
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.protocol import Message
from kernelkit.testing import FakeKernel
from kernelkit.transport import MemoryTransport


def _serve(kc: KernelClient, transport: MemoryTransport, **kw: Any) -> FakeKernel:
    """Start a FakeKernel on the client's own loop thread (where the transport lives)."""
    kernel = FakeKernel(transport, **kw)

    async def start() -> None:
        kernel.start()

    assert kc.loop is not None
    asyncio.run_coroutine_threadsafe(start(), kc.loop).result()
    return kernel


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport(key=b"k")


@pytest.fixture
def kc(transport: MemoryTransport) -> Iterator[KernelClient]:
    with KernelClient(transport, kernel_name="fake", heartbeat=False) as client:
        _serve(client, transport)
        yield client


def test_requests(kc: KernelClient) -> None:
    assert kc.wait_for_ready(timeout=5).header.msg_type == "kernel_info_reply"
    assert kc.kernel_info_reply is not None
    outputs: list[Message] = []
    reply = kc.execute("print hi", outputs=outputs)
    assert reply.content["status"] == "ok"
    assert [m.header.msg_type for m in outputs] == ["execute_input", "stream"]
    assert kc.execution_state == "idle"
    with pytest.raises(ExecutionError):
        kc.execute("error E", raise_on_error=True)
    with pytest.raises(KernelTimeout):
        kc.execute("hold", timeout=0.05)
    calls: list[tuple[Callable[[], Message], str]] = [
        (lambda: kc.kernel_info(), "kernel_info_reply"),
        (lambda: kc.complete("x"), "complete_reply"),
        (lambda: kc.inspect("x"), "inspect_reply"),
        (lambda: kc.history(), "history_reply"),
        (lambda: kc.is_complete("x"), "is_complete_reply"),
        (lambda: kc.comm_info(), "comm_info_reply"),
        (lambda: kc.interrupt(), "interrupt_reply"),
        (lambda: kc.shutdown(), "shutdown_reply"),
    ]
    for call, reply_type in calls:
        assert call().header.msg_type == reply_type


def test_comms(kc: KernelClient) -> None:
    comm_id = kc.comm_open("t", {"x": 1})
    assert kc.comm_msg(comm_id, {"y": 2})
    assert kc.comm_close(comm_id)


def test_hooks_run_in_the_calling_thread(kc: KernelClient) -> None:
    me = threading.get_ident()
    threads: set[int] = set()
    seen: list[str] = []

    def show(msg: Message) -> None:
        threads.add(threading.get_ident())
        seen.append(msg.header.msg_type)

    def answer(msg: Message) -> str:
        threads.add(threading.get_ident())
        return "typed"

    reply = kc.execute_interactive("input ?", output_hook=show, stdin_hook=answer)
    assert reply.content["status"] == "ok"
    assert threads == {me}
    assert seen == ["status", "execute_input", "stream", "status"]


def test_stdin_hook_may_answer_itself(kc: KernelClient) -> None:
    texts: list[str] = []

    def answer(msg: Message) -> None:
        kc.input("by hand", parent=msg)

    kc.execute_interactive(
        "input ?",
        output_hook=lambda m: texts.append(m.content.get("text", "")),
        stdin_hook=answer,
    )
    assert "by hand" in texts


def test_failing_hooks_raise_and_leave_nothing_pending(kc: KernelClient) -> None:
    def broken(msg: Message) -> str:
        raise LookupError("stdin broke")

    with pytest.raises(LookupError, match="stdin broke"):
        kc.execute_interactive("input ?", output_hook=lambda m: None, stdin_hook=broken)

    def broken_output(msg: Message) -> None:
        raise ValueError("output broke")

    with pytest.raises(ValueError, match="output broke"):
        kc.execute_interactive("print x", output_hook=broken_output)
    assert kc.execute("1").content["status"] == "ok"


def test_default_output_hook(kc: KernelClient, capsys: pytest.CaptureFixture[str]) -> None:
    kc.execute_interactive("print shown")
    assert capsys.readouterr().out == "shown\n"


def test_subshells(kc: KernelClient) -> None:
    with kc.create_subshell() as sub:
        assert kc.list_subshells() == [sub.subshell_id]
        outputs: list[Message] = []
        assert sub.execute("print s", outputs=outputs).content["status"] == "ok"
        assert [m.header.msg_type for m in outputs] == ["execute_input", "stream"]
        assert sub.execute_interactive("x", output_hook=lambda m: None)
        sub_calls: list[Callable[[], Message]] = [
            sub.kernel_info,
            lambda: sub.complete("x"),
            lambda: sub.inspect("x"),
            sub.history,
            lambda: sub.is_complete("x"),
            sub.comm_info,
        ]
        for call in sub_calls:
            assert call().header.msg_type.endswith("_reply")
        assert "Subshell" in repr(sub)
    assert sub.closed
    assert kc.list_subshells() == []
    other = kc.create_subshell()
    kc.delete_subshell(other.subshell_id)
    with pytest.raises(KernelError, match="Unknown subshell_id"):
        other.close()


def test_subshells_unsupported(transport: MemoryTransport) -> None:
    with KernelClient(transport, heartbeat=False) as kc:
        _serve(kc, transport, features=())
        assert kc.supports("kernel subshells") is False
        with pytest.raises(UnsupportedFeature):
            kc.create_subshell()


def test_iopub_stream_and_handler(kc: KernelClient) -> None:
    kc.wait_for_ready(timeout=5)  # the welcome has come
    handled: list[Message] = []
    remove = kc.add_iopub_handler(handled.append)
    with kc.iopub_messages() as stream:
        kc.execute("print x", outputs=[])
        got = [stream.get(timeout=2).header.msg_type for _ in range(4)]
        with pytest.raises(KernelTimeout):
            stream.get(timeout=0.01)
    assert got == ["status", "execute_input", "stream", "status"]
    remove()
    assert [m.header.msg_type for m in handled] == got
    stream.close()  # twice is harmless


def test_iopub_stream_ends_on_close(transport: MemoryTransport) -> None:
    kc = KernelClient(transport, heartbeat=False)
    kc.start()
    stream = kc.iopub_messages()
    kc.close()
    assert list(stream) == []
    with pytest.raises(ClientClosed):
        stream.get(timeout=1)


def test_blocking_call_from_the_loop_thread_is_refused(kc: KernelClient) -> None:
    errors: list[BaseException] = []

    def handler(msg: Message) -> None:
        try:
            kc.kernel_info()
        except KernelError as exc:
            errors.append(exc)

    remove = kc.add_iopub_handler(handler)
    kc.execute("1", outputs=[])
    remove()
    assert errors
    assert "own loop thread" in str(errors[0])


def test_lifecycle(transport: MemoryTransport) -> None:
    kc = KernelClient(transport, heartbeat=False)
    with pytest.raises(ClientClosed, match="not started"):
        kc.kernel_info()
    kc.start()
    kc.start()  # idempotent
    assert kc.async_client.started
    _serve(kc, transport)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(kc.execute, "hold")
        time.sleep(0.05)
        kc.close()
        with pytest.raises(ClientClosed):
            pending.result(timeout=2)
    assert kc.closed
    with pytest.raises(ClientClosed, match="closed"):
        kc.execute("1")
    with pytest.raises(ClientClosed):
        kc.start()
    kc.close()  # twice is harmless
    assert "KernelClient" in repr(kc)


def test_close_ends_an_interactive_execute_waiting_in_another_thread(
    transport: MemoryTransport,
) -> None:
    kc = KernelClient(transport, heartbeat=False)
    kc.start()
    _serve(kc, transport)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(kc.execute_interactive, "hold", output_hook=lambda m: None)
        time.sleep(0.05)
        kc.close()
        with pytest.raises(ClientClosed):
            pending.result(timeout=2)


def test_interactive_timeout_and_unusable_client(kc: KernelClient) -> None:
    with pytest.raises(KernelTimeout):
        kc.execute_interactive("hold", output_hook=lambda m: None, timeout=0.05)
    kc.notify_dead(KernelDied("gone"))
    with pytest.raises(KernelDied, match="gone"):
        kc.execute_interactive("1", output_hook=lambda m: None)  # fails on the loop, at once
    kc.notify_restarted()
    assert kc.execute_interactive("1", output_hook=lambda m: None).content["status"] == "ok"


def test_notify_dead_reaches_a_waiting_thread(kc: KernelClient) -> None:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(kc.execute, "hold")
        time.sleep(0.05)
        kc.notify_dead(KernelDied("gone", exit_code=1))
        with pytest.raises(KernelDied, match="exit code 1"):
            pending.result(timeout=1)
    kc.notify_restarted()
    assert kc.execute("1").content["status"] == "ok"


def test_many_threads_share_one_client(kc: KernelClient) -> None:
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: kc.execute(f"{i}", outputs=[]), range(40)))
    assert sorted(r.content["execution_count"] for r in replies) == list(range(1, 41))


def test_each_client_adds_exactly_one_thread() -> None:
    before = threading.active_count()
    clients = [KernelClient(MemoryTransport(), heartbeat=False) for _ in range(16)]
    for c in clients:
        c.start()
    try:
        assert threading.active_count() - before == 16
    finally:
        for c in clients:
            c.close()
    assert threading.active_count() == before


def test_notify_after_close_is_harmless(transport: MemoryTransport) -> None:
    kc = KernelClient(transport, heartbeat=False)
    kc.start()
    kc.close()
    kc.notify_dead(KernelDied("late"))  # the loop is closed: nothing pending, no error
    kc.notify_restarted()
    never_started = KernelClient(MemoryTransport(), heartbeat=False)
    never_started.close()
    never_started.notify_dead(KernelDied("late"))
    never_started.notify_restarted()
    # Closed while its shared loop thread runs on: still nothing to do, no error.
    shared = LoopThread("kernelkit-test-notify")
    on_shared = KernelClient(MemoryTransport(), heartbeat=False, loop_thread=shared)
    on_shared.start()
    on_shared.close()
    on_shared.notify_dead(KernelDied("late"))
    on_shared.notify_restarted()
    shared.close()
    with pytest.raises(ClientClosed, match="closed"):
        on_shared.kernel_info()


def test_close_from_a_thread_running_its_own_event_loop() -> None:
    # An async application may hold a blocking client and close it from a coroutine;
    # close() must not try to run a loop in that thread.
    client = KernelClient(MemoryTransport(), heartbeat=False)
    client.start()

    async def close_inside_a_loop() -> None:
        client.close()

    asyncio.run(close_inside_a_loop())
    assert client.closed


def test_clients_may_share_one_loop_thread() -> None:
    before = threading.active_count()
    shared = LoopThread("kernelkit-test-shared")
    transports = [MemoryTransport(key=b"k") for _ in range(3)]
    clients = [KernelClient(t, heartbeat=False, loop_thread=shared) for t in transports]
    for kc, t in zip(clients, transports, strict=True):
        kc.start()
        _serve(kc, t)
    assert threading.active_count() == before + 1
    assert all(kc.loop_thread is shared for kc in clients)
    shared.close_when_released()  # the owner is done; the clients still hold it
    clients[0].close()
    assert not shared.closed
    assert clients[1].execute("1").content["status"] == "ok"
    clients[1].close()
    clients[2].close()
    assert shared.closed
    assert threading.active_count() == before
    late = KernelClient(MemoryTransport(), heartbeat=False, loop_thread=shared)
    with pytest.raises(ClientClosed, match="loop thread kernelkit-test-shared is closed"):
        late.start()


def test_blocking_face_of_a_started_async_client() -> None:
    shared = LoopThread("kernelkit-test-adopt")
    transport = MemoryTransport(key=b"k")
    async_client = AsyncKernelClient(transport, heartbeat=False)

    async def start() -> None:
        await async_client.start()
        FakeKernel(transport).start()

    shared.run(start())
    kc = KernelClient.from_async_client(async_client, loop_thread=shared)
    assert kc.async_client is async_client
    assert kc.execute("1").content["status"] == "ok"  # started already: no start() needed
    kc.close()
    assert async_client.closed
    shared.close_when_released()
    assert shared.closed

    elsewhere = AsyncKernelClient(MemoryTransport(), heartbeat=False)

    async def start_elsewhere() -> None:
        await elsewhere.start()
        with pytest.raises(ClientClosed, match="another event loop"):
            KernelClient.from_async_client(elsewhere, loop_thread=LoopThread("x"))
        await elsewhere.aclose()

    asyncio.run(start_elsewhere())


def test_a_connection_file_that_lies_fails_with_a_clear_error(tmp_path: Path) -> None:
    """Ports nobody listens on (real sockets): the blocking execute must not hang."""
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info = ConnectionInfo(key=b"k", kernel_name="ghost").with_ports(
        **dict(zip(names, allocate_ports(5), strict=True))
    )
    path = write_connection_file(info, tmp_path / "kernel-ghost.json")
    with KernelClient.from_connection_file(
        path, heartbeat_interval=0.1, heartbeat_timeout=0.2, first_contact_timeout=0.5
    ) as kc:
        started = time.monotonic()
        with pytest.raises(HeartbeatTimeout, match=f"never answered at {info.url('hb')}"):
            kc.execute("1", timeout=None)
        assert time.monotonic() - started < 2.0
        # wait_for_ready keeps its own time limit.
        with pytest.raises(KernelTimeout, match=r"not ready within 0\.3 s"):
            kc.wait_for_ready(timeout=0.3)
