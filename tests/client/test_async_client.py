"""AsyncKernelClient over the in-memory transport: pure client logic, no sockets."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
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
    RemoteProtocolError,
    UnsupportedFeature,
)
from kernelkit._connection import ConnectionInfo, allocate_ports, write_connection_file
from kernelkit.client import AsyncKernelClient, print_output
from kernelkit.protocol import Message
from kernelkit.testing import FakeKernel
from kernelkit.transport import MemoryTransport

INTERVAL = 0.05  # a fast heartbeat for these tests
TIMEOUT = 0.1


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport(key=b"secret")


@pytest.fixture
def kernel(transport: MemoryTransport) -> FakeKernel:
    return FakeKernel(transport)


@pytest.fixture
async def client(
    transport: MemoryTransport, kernel: FakeKernel
) -> AsyncIterator[AsyncKernelClient]:
    async with AsyncKernelClient(
        transport,
        kernel_name="fake",
        heartbeat_interval=INTERVAL,
        heartbeat_timeout=TIMEOUT,
        silence_timeout=0.2,
    ) as c:
        kernel.start()
        yield c
    await kernel.stop()


def _types(msgs: list[Message]) -> list[str]:
    return [m.header.msg_type for m in msgs]


# -- requests and replies --------------------------------------------------------------


async def test_wait_for_ready_needs_reply_and_iopub(client: AsyncKernelClient) -> None:
    reply = await client.wait_for_ready(timeout=5)
    assert reply.header.msg_type == "kernel_info_reply"
    assert client.kernel_info_reply is reply


async def test_wait_for_ready_asks_again_when_iopub_is_silent(transport: MemoryTransport) -> None:
    # A kernel that publishes nothing until asked twice (its first status was missed).
    async with AsyncKernelClient(transport, heartbeat=False) as client:
        ready = asyncio.create_task(client.wait_for_ready(timeout=5))
        _, first = await transport.receive()
        transport.reply(first, "kernel_info_reply", {"status": "ok"})
        _, second = await transport.receive()  # asked again: nothing came on IOPub
        assert second.header.msg_type == "kernel_info_request"
        transport.publish(second, "status", {"execution_state": "idle"})
        transport.reply(second, "kernel_info_reply", {"status": "ok"})
        reply = await ready
        assert reply.parent_id == second.header.msg_id


async def test_wait_for_ready_asks_again_when_a_request_is_lost(
    transport: MemoryTransport,
) -> None:
    # A kernel_info_request sent while a restarting kernel's socket went away is lost:
    # wait_for_ready asks again instead of waiting out its whole timeout.
    async with AsyncKernelClient(transport, heartbeat=False) as client:
        ready = asyncio.create_task(client.wait_for_ready(timeout=10))
        _, lost = await transport.receive()
        assert lost.header.msg_type == "kernel_info_request"
        _, second = await transport.receive(timeout=3)  # asked again within ~1 s
        assert second.header.msg_type == "kernel_info_request"
        transport.publish(second, "status", {"execution_state": "idle"})
        transport.reply(second, "kernel_info_reply", {"status": "ok"})
        reply = await asyncio.wait_for(ready, 3)
        assert reply.parent_id == second.header.msg_id


async def test_wait_for_ready_times_out_clearly(transport: MemoryTransport) -> None:
    async with AsyncKernelClient(transport, kernel_name="mute", heartbeat=False) as client:
        with pytest.raises(
            KernelTimeout, match=r"mute not ready within 0\.1 s: no kernel_info_reply"
        ):
            await client.wait_for_ready(timeout=0.1)

        async def answer_without_iopub() -> None:
            while True:
                _, msg = await transport.receive(timeout=None)
                transport.reply(msg, "kernel_info_reply", {"status": "ok"})

        responder = asyncio.create_task(answer_without_iopub())
        with pytest.raises(KernelTimeout, match="no IOPub message"):
            await client.wait_for_ready(timeout=0.3)
        responder.cancel()


async def test_execute_returns_reply_and_collects_outputs(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    reply = await client.execute("print hello", outputs=outputs)
    assert reply.content["status"] == "ok"
    assert _types(outputs) == ["execute_input", "stream"]
    assert outputs[1].content["text"] == "hello\n"
    assert client.pending_requests == 0


async def test_outputs_complete_when_idle_comes_before_reply(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    reply = await client.execute("idle-first", outputs=outputs)
    assert reply.header.msg_type == "execute_reply"
    assert _types(outputs) == ["execute_input"]


async def test_execute_without_outputs_returns_on_reply(
    client: AsyncKernelClient, transport: MemoryTransport, kernel: FakeKernel
) -> None:
    await kernel.stop()
    task = asyncio.create_task(client.execute("x"))
    _, request = await transport.receive()
    transport.reply(request, "execute_reply", {"status": "ok"})
    reply = await asyncio.wait_for(task, 2)  # no idle was ever published
    assert reply.parent_id == request.header.msg_id
    assert client.pending_requests == 0


async def test_concurrent_requests_each_get_their_own_reply(
    client: AsyncKernelClient, transport: MemoryTransport, kernel: FakeKernel
) -> None:
    await kernel.stop()
    lists: list[list[Message]] = [[] for _ in range(20)]
    tasks = [asyncio.create_task(client.execute(f"code {i}", outputs=lists[i])) for i in range(20)]
    requests = [(await transport.receive())[1] for _ in range(20)]
    for req in reversed(requests):  # answer in the opposite order, interleaved
        transport.publish(req, "status", {"execution_state": "busy"})
        transport.publish(req, "stream", {"name": "stdout", "text": req.content["code"]})
    for req in requests:
        transport.reply(req, "execute_reply", {"status": "ok", "code": req.content["code"]})
        transport.publish(req, "status", {"execution_state": "idle"})
    replies = await asyncio.gather(*tasks)
    for i, (reply, outs) in enumerate(zip(replies, lists, strict=True)):
        assert reply.content["code"] == f"code {i}"
        assert [m.content["text"] for m in outs] == [f"code {i}"]


async def test_raise_on_error(client: AsyncKernelClient) -> None:
    reply = await client.execute("error ValueError")
    assert reply.content["status"] == "error"
    with pytest.raises(ExecutionError, match="ValueError: boom") as info:
        await client.execute("error ValueError", raise_on_error=True)
    assert info.value.traceback[-1] == "ValueError: boom"


async def test_timeout_fails_and_forgets(client: AsyncKernelClient) -> None:
    started = time.monotonic()
    with pytest.raises(KernelTimeout, match=r"no reply to execute_request within 0\.1 s"):
        await client.execute("hold", timeout=0.1)
    assert time.monotonic() - started < 1
    assert client.pending_requests == 0


async def test_timeout_waiting_for_idle_says_so(
    client: AsyncKernelClient, transport: MemoryTransport, kernel: FakeKernel
) -> None:
    await kernel.stop()
    task = asyncio.create_task(client.execute("x", outputs=[], timeout=0.2))
    _, request = await transport.receive()
    transport.reply(request, "execute_reply", {"status": "ok"})
    with pytest.raises(KernelTimeout, match="idle status for execute_request"):
        await task


async def test_cancelled_request_is_forgotten(client: AsyncKernelClient) -> None:
    task = asyncio.create_task(client.execute("hold"))
    await asyncio.sleep(0.01)
    assert client.pending_requests == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pending_requests == 0


@pytest.mark.parametrize(
    ("call", "channel", "msg_type", "content"),
    [
        (lambda c: c.kernel_info(), "shell", "kernel_info_request", {}),
        (
            lambda c: c.complete("pri"),
            "shell",
            "complete_request",
            {"code": "pri", "cursor_pos": 3},
        ),
        (
            lambda c: c.inspect("print", 2, 1),
            "shell",
            "inspect_request",
            {"code": "print", "cursor_pos": 2, "detail_level": 1},
        ),
        (
            lambda c: c.history(hist_access_type="tail", n=3),
            "shell",
            "history_request",
            {"raw": True, "output": False, "hist_access_type": "tail", "n": 3},
        ),
        (
            lambda c: c.history(),
            "shell",
            "history_request",
            {
                "raw": True,
                "output": False,
                "hist_access_type": "range",
                "session": 0,
                "start": 0,
                "stop": None,
            },
        ),
        (
            lambda c: c.history(hist_access_type="search", pattern="a*", unique=True),
            "shell",
            "history_request",
            {
                "raw": True,
                "output": False,
                "hist_access_type": "search",
                "pattern": "a*",
                "unique": True,
            },
        ),
        (lambda c: c.is_complete("1+"), "shell", "is_complete_request", {"code": "1+"}),
        (lambda c: c.comm_info(), "shell", "comm_info_request", {}),
        (lambda c: c.comm_info("t"), "shell", "comm_info_request", {"target_name": "t"}),
        (lambda c: c.shutdown(), "control", "shutdown_request", {"restart": False}),
        (lambda c: c.shutdown(restart=True), "control", "shutdown_request", {"restart": True}),
        (lambda c: c.interrupt(), "control", "interrupt_request", {}),
    ],
)
async def test_request_kinds(
    client: AsyncKernelClient,
    kernel: FakeKernel,
    call: Any,
    channel: str,
    msg_type: str,
    content: dict[str, Any],
) -> None:
    reply = await call(client)
    assert reply.header.msg_type == msg_type.replace("_request", "_reply")
    sent_channel, sent = kernel.received[-1]
    assert (sent_channel, sent.header.msg_type) == (channel, msg_type)
    assert dict(sent.content) == content
    assert sent.header.session == client.session.session_id


async def test_execute_content_defaults(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    await client.execute("1", user_expressions={"a": "1"})
    (sent,) = kernel.of_type("execute_request")
    assert dict(sent.content) == {
        "code": "1",
        "silent": False,
        "store_history": True,
        "user_expressions": {"a": "1"},
        "allow_stdin": False,
        "stop_on_error": True,
    }


# -- interactive: output and stdin hooks -------------------------------------------------


async def test_execute_interactive_hooks(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    seen: list[Message] = []
    reply = await client.execute_interactive(
        "input name? ", output_hook=seen.append, stdin_hook=lambda m: "bob"
    )
    assert reply.content["status"] == "ok"
    assert _types(seen) == ["status", "execute_input", "stream", "status"]
    assert seen[2].content["text"] == "bob"
    (answer,) = kernel.of_type("input_reply")
    assert answer.content == {"value": "bob"}
    (request,) = kernel.of_type("execute_request")
    assert request.content["allow_stdin"] is True
    assert answer.parent_header is not None
    assert answer.parent_header.msg_type == "input_request"


async def test_async_stdin_hook(client: AsyncKernelClient) -> None:
    async def answer(msg: Message) -> str:
        await asyncio.sleep(0)
        return "async " + str(msg.content["prompt"])

    seen: list[Message] = []
    await client.execute_interactive("input x", output_hook=seen.append, stdin_hook=answer)
    assert [m.content["text"] for m in seen if m.header.msg_type == "stream"] == ["async x"]


async def test_stdin_hook_answering_itself(client: AsyncKernelClient) -> None:
    async def answer(msg: Message) -> None:
        await client.input("direct")

    seen: list[Message] = []
    await client.execute_interactive("input x", output_hook=seen.append, stdin_hook=answer)
    assert [m.content["text"] for m in seen if m.header.msg_type == "stream"] == ["direct"]


async def test_failing_stdin_hook_still_answers_and_raises(
    client: AsyncKernelClient, kernel: FakeKernel
) -> None:
    def broken(msg: Message) -> str:
        raise LookupError("no input here")

    with pytest.raises(LookupError, match="no input here"):
        await client.execute_interactive("input x", output_hook=lambda m: None, stdin_hook=broken)
    (answer,) = kernel.of_type("input_reply")
    assert answer.content == {"value": ""}


async def test_failing_output_hook_raises_from_the_call(client: AsyncKernelClient) -> None:
    def broken(msg: Message) -> None:
        raise ZeroDivisionError("hook")

    with pytest.raises(ZeroDivisionError):
        await client.execute_interactive("print x", output_hook=broken)
    assert client.pending_requests == 0


async def test_default_output_hook_prints(
    client: AsyncKernelClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.execute_interactive("print hi", allow_stdin=False)
    await client.execute_interactive("6*7")
    await client.execute_interactive("error KeyError")
    out, err = capsys.readouterr()
    assert out == "hi\n6*7\n"
    assert err.endswith("KeyError: boom\n")


def test_print_output_ignores_other_messages(
    transport: MemoryTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    print_output(transport.message("status", {"execution_state": "idle"}))
    print_output(transport.message("stream", {"name": "stderr", "text": "e"}))
    print_output(transport.message("display_data", {"data": {"image/png": "x"}}))
    print_output(transport.message("error", {"ename": "E", "evalue": "v"}))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "eE: v\n"


async def test_input_request_without_hook_is_logged(
    client: AsyncKernelClient,
    transport: MemoryTransport,
    kernel: FakeKernel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = asyncio.create_task(client.execute("input who?", allow_stdin=True))
    with caplog.at_level(logging.WARNING, logger="kernelkit.client"):
        for _ in range(100):
            if "asks for input" in caplog.text:
                break
            await asyncio.sleep(0.01)
    assert "who?" in caplog.text
    await client.input("late")  # answers the last input_request
    reply = await asyncio.wait_for(task, 2)
    assert reply.content["status"] == "ok"
    (answer,) = kernel.of_type("input_reply")
    assert answer.parent_header is not None
    assert answer.parent_header.msg_type == "input_request"


# -- comms, IOPub access -----------------------------------------------------------------


async def test_comms(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    comm_id = await client.comm_open("target", {"a": 1}, metadata={"m": 1})
    msg_id = await client.comm_msg(comm_id, {"b": 2}, buffers=(b"buf",))
    await client.comm_close(comm_id)
    await client.kernel_info()  # the fake kernel has seen everything before this
    opened, sent, closed = (kernel.of_type(t)[0] for t in ("comm_open", "comm_msg", "comm_close"))
    assert dict(opened.content) == {"comm_id": comm_id, "target_name": "target", "data": {"a": 1}}
    assert dict(opened.metadata) == {"m": 1}
    assert sent.header.msg_id == msg_id
    assert dict(sent.content) == {"comm_id": comm_id, "data": {"b": 2}}
    assert [bytes(b) for b in sent.buffers] == [b"buf"]
    assert dict(closed.content) == {"comm_id": comm_id, "data": {}}
    assert await client.comm_open("t", comm_id="mine") == "mine"


async def test_iopub_stream_and_handler(client: AsyncKernelClient) -> None:
    await client.wait_for_ready(timeout=5)  # the welcome has come
    handled: list[str] = []
    remove = client.add_iopub_handler(lambda m: handled.append(m.header.msg_type))
    async with client.iopub_messages() as stream:
        await client.execute("print x", outputs=[])
        got = [(await stream.get(timeout=1)).header.msg_type for _ in range(4)]
    assert got == ["status", "execute_input", "stream", "status"]
    assert handled == got
    remove()
    remove()  # twice is harmless
    await client.execute("print y", outputs=[])
    assert handled == got


async def test_iopub_stream_timeout_and_end(transport: MemoryTransport) -> None:
    client = AsyncKernelClient(transport, heartbeat=False)
    await client.start()
    stream = client.iopub_messages()
    with pytest.raises(KernelTimeout):
        await stream.get(timeout=0.01)
    await client.aclose()
    assert [m async for m in stream] == []
    with pytest.raises(ClientClosed):
        await stream.get()


async def test_failing_iopub_handler_is_logged_not_fatal(
    client: AsyncKernelClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(msg: Message) -> None:
        raise ValueError("handler")

    client.add_iopub_handler(broken)
    with caplog.at_level(logging.ERROR, logger="kernelkit.client"):
        reply = await client.execute("print x", outputs=[])
    assert reply.content["status"] == "ok"
    assert "IOPub handler" in caplog.text


async def test_bad_message_is_counted_and_logged(
    client: AsyncKernelClient, transport: MemoryTransport, caplog: pytest.LogCaptureFixture
) -> None:
    frames = transport.kernel_session.serialize(transport.message("status", {}))
    frames[1] = b"0" * 64  # a forged signature
    with caplog.at_level(logging.WARNING, logger="kernelkit.client"):
        transport.deliver_frames("iopub", frames)
        await client.kernel_info()
    assert client.rejected_messages == 1
    assert "failed verification" in caplog.text


# -- failure: closed, dead, heartbeat ----------------------------------------------------


async def test_not_started_and_closed(transport: MemoryTransport) -> None:
    client = AsyncKernelClient(transport, heartbeat=False)
    with pytest.raises(ClientClosed, match="not started"):
        await client.kernel_info()
    await client.start()
    await client.start()  # idempotent
    pending = asyncio.create_task(client.kernel_info())
    await asyncio.sleep(0)
    await client.aclose()
    with pytest.raises(ClientClosed, match="was closed"):
        await pending
    with pytest.raises(ClientClosed, match="is closed"):
        await client.kernel_info()
    with pytest.raises(ClientClosed):
        await client.start()
    await client.aclose()  # twice is harmless
    assert "closed" in repr(client)


async def test_notify_dead_fails_pending_and_future_requests(
    client: AsyncKernelClient,
) -> None:
    tasks = [asyncio.create_task(client.execute("hold")) for _ in range(3)]
    await asyncio.sleep(0.01)
    died = KernelDied(kernel_name="fake", exit_code=-9, output_tail=["last words"])
    client.notify_dead(died)
    for task in tasks:
        with pytest.raises(KernelDied, match="killed by signal 9") as info:
            await asyncio.wait_for(task, 0.5)
        assert info.value.output_tail == ("last words",)
    with pytest.raises(KernelDied):
        await client.execute("1")
    assert "dead" in repr(client)
    client.notify_restarted()
    assert (await client.execute("1")).content["status"] == "ok"


async def test_notify_dead_from_another_thread(client: AsyncKernelClient) -> None:
    task = asyncio.create_task(client.execute("hold"))
    await asyncio.sleep(0.01)
    thread = threading.Thread(target=client.notify_dead, args=(KernelDied("gone"),))
    thread.start()
    with pytest.raises(KernelDied, match="gone"):
        await asyncio.wait_for(task, 1)
    thread.join()


def test_notify_on_a_closed_client_is_a_no_op() -> None:
    client = AsyncKernelClient(MemoryTransport(), heartbeat=False)

    async def open_and_close() -> None:
        await client.start()
        await client.aclose()

    asyncio.run(open_and_close())  # its loop is closed now, too
    for notify in (lambda: client.notify_dead(KernelDied("late")), client.notify_restarted):
        notify()  # from this thread: no loop to reach
        thread = threading.Thread(target=notify)
        thread.start()
        thread.join()
    assert "closed" in repr(client)


async def test_notify_after_aclose_on_a_running_loop_is_a_no_op() -> None:
    client = AsyncKernelClient(MemoryTransport(), heartbeat=False)
    await client.start()
    await client.aclose()
    errors: list[BaseException] = []

    def notify_both() -> None:
        try:
            client.notify_dead(KernelDied("late"))
            client.notify_restarted()
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    thread = threading.Thread(target=notify_both)
    thread.start()
    thread.join()
    client.notify_dead(KernelDied("late"))
    await asyncio.sleep(0)
    assert errors == []
    with pytest.raises(ClientClosed):  # still closed, not dead
        await client.kernel_info()


async def test_restart_with_new_info_moves_the_transport(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    moved = ConnectionInfo(key=b"secret", kernel_name="fake").with_ports(
        shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5
    )
    client.notify_dead(KernelDied("restarting"))
    client.notify_restarted(moved)
    assert transport.reconnected == [moved]
    assert (await client.kernel_info(timeout=2)).msg_type == "kernel_info_reply"
    client.notify_restarted()  # same endpoints: nothing to move
    assert transport.reconnected == [moved]


async def test_restart_the_transport_cannot_follow_fails_every_request() -> None:
    class Stuck(MemoryTransport):
        def reconnect(self, info: ConnectionInfo) -> None:
            raise KernelError("cannot follow: make a new client")

    async with AsyncKernelClient(Stuck(), heartbeat=False) as client:
        client.notify_restarted(ConnectionInfo())
        with pytest.raises(KernelError, match="make a new client"):
            await client.kernel_info()


async def test_restart_fails_requests_of_the_old_kernel(client: AsyncKernelClient) -> None:
    task = asyncio.create_task(client.execute("hold"))
    await asyncio.sleep(0.01)
    client.notify_restarted()
    with pytest.raises(KernelError, match="restarted"):
        await task


async def test_transport_lost_fails_everything(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    task = asyncio.create_task(client.execute("hold"))
    await asyncio.sleep(0.01)
    transport.lose(KernelError("connection reset"))
    with pytest.raises(KernelError, match="connection reset"):
        await task
    with pytest.raises(KernelError, match="connection reset"):
        await client.kernel_info()


async def test_heartbeat_failure_fails_pending_even_without_timeout(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    await asyncio.sleep(0.1)  # the heartbeat has answered at least once
    task = asyncio.create_task(client.execute("hold", timeout=None))
    await asyncio.sleep(0.01)
    transport.alive = False
    started = time.monotonic()
    with pytest.raises(HeartbeatTimeout, match="did not answer its heartbeat"):
        await asyncio.wait_for(task, 2)
    # silence_timeout 0.2 (interval 0.05, timeout 0.1), with slack
    assert time.monotonic() - started < 1.0
    with pytest.raises(HeartbeatTimeout):
        await client.execute("1")
    transport.alive = True  # answering again: usable again
    for _ in range(100):
        try:
            assert (await client.execute("1")).content["status"] == "ok"
            break
        except HeartbeatTimeout:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("the client never recovered after the heartbeat came back")


async def test_heartbeat_waits_for_first_answer(transport: MemoryTransport) -> None:
    # A kernel still starting does not answer yet: that is not a failure.
    transport.alive = False
    async with AsyncKernelClient(
        transport, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT
    ) as client:
        FakeKernel(transport).start()
        await asyncio.sleep(0.3)
        assert (await client.execute("1")).content["status"] == "ok"


async def test_heartbeat_off(transport: MemoryTransport) -> None:
    transport.alive = False
    async with AsyncKernelClient(transport, heartbeat=False) as client:
        FakeKernel(transport).start()
        await asyncio.sleep(0.05)
        assert (await client.execute("1")).content["status"] == "ok"


def test_heartbeat_parameters_checked(transport: MemoryTransport) -> None:
    with pytest.raises(ValueError, match="positive"):
        AsyncKernelClient(transport, heartbeat_timeout=0)
    with pytest.raises(ValueError, match="first_contact_timeout"):
        AsyncKernelClient(transport, first_contact_timeout=0)


async def test_a_kernel_that_never_answers_fails_within_first_contact_timeout(
    transport: MemoryTransport,
) -> None:
    transport.alive = False  # nobody there: no echo, no message
    async with AsyncKernelClient(
        transport, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT, first_contact_timeout=0.3
    ) as client:
        started = time.monotonic()
        with pytest.raises(HeartbeatTimeout, match="never answered at memory://heartbeat") as info:
            await asyncio.wait_for(client.execute("1", timeout=None), 5)
        assert 0.3 <= time.monotonic() - started < 1.0
        assert "connection file may be stale" in str(info.value)
        with pytest.raises(HeartbeatTimeout, match="never answered"):
            await client.kernel_info()  # at once
        # The kernel turns up after all: usable from its first answer on.
        transport.alive = True
        FakeKernel(transport).start()
        for _ in range(100):
            try:
                assert (await client.execute("1")).content["status"] == "ok"
                break
            except HeartbeatTimeout:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the client never recovered once the kernel answered")


async def test_first_contact_yields_to_wait_for_ready_and_restarts_its_clock(
    transport: MemoryTransport,
) -> None:
    transport.alive = False
    async with AsyncKernelClient(
        transport, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT, first_contact_timeout=0.1
    ) as client:
        # wait_for_ready's own timeout is the limit while it runs (not the 0.1 s).
        with pytest.raises(KernelTimeout, match=r"not ready within 0\.5 s") as info:
            await client.wait_for_ready(timeout=0.5)
        assert not isinstance(info.value, HeartbeatTimeout)
        await asyncio.sleep(0.3)  # past every limit now
        with pytest.raises(HeartbeatTimeout, match="never answered"):
            await client.kernel_info()

        # A slow starter that answers within wait_for_ready's time is fine.
        async def start_late() -> None:
            await asyncio.sleep(0.3)
            transport.alive = True
            FakeKernel(transport).start()

        late = asyncio.create_task(start_late())
        assert (await client.wait_for_ready(timeout=5)).msg_type == "kernel_info_reply"
        await late
        # A restart: the new kernel gets its own first-contact time.
        client.notify_restarted()
        transport.alive = False
        with pytest.raises(HeartbeatTimeout, match="never answered"):
            await asyncio.wait_for(client.execute("hold", timeout=None), 5)


async def test_no_first_contact_limit(transport: MemoryTransport) -> None:
    transport.alive = False
    async with AsyncKernelClient(
        transport,
        heartbeat_interval=INTERVAL,
        heartbeat_timeout=TIMEOUT,
        first_contact_timeout=None,
    ) as client:
        with pytest.raises(KernelTimeout) as info:
            await client.execute("1", timeout=0.5)
        assert not isinstance(info.value, HeartbeatTimeout)


# -- subshells ---------------------------------------------------------------------------


async def test_subshell_lifecycle(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    async with await client.create_subshell() as sub:
        assert await client.list_subshells() == [sub.subshell_id]
        outputs: list[Message] = []
        reply = await sub.execute("print in sub", outputs=outputs)
        assert reply.content["status"] == "ok"
        request = kernel.of_type("execute_request")[-1]
        assert request.header.subshell_id == sub.subshell_id
        for call in (
            sub.kernel_info(),
            sub.complete("x"),
            sub.inspect("x"),
            sub.history(),
            sub.is_complete("x"),
            sub.comm_info(),
            sub.execute_interactive("x", output_hook=lambda m: None),
        ):
            await call
            assert kernel.received[-1][1].header.subshell_id == sub.subshell_id
    assert sub.closed
    assert kernel.subshells == []
    with pytest.raises(ClientClosed, match="closed"):
        await sub.execute("1")
    await sub.aclose()  # twice is harmless
    control = [m.header.msg_type for ch, m in kernel.received if ch == "control"]
    assert control == [
        "create_subshell_request",
        "list_subshell_request",
        "delete_subshell_request",
    ]


async def test_delete_unknown_subshell_is_an_error(client: AsyncKernelClient) -> None:
    with pytest.raises(KernelError, match="Unknown subshell_id nope"):
        await client.delete_subshell("nope")


async def test_subshells_unsupported_send_nothing(transport: MemoryTransport) -> None:
    kernel = FakeKernel(transport, features=())
    async with AsyncKernelClient(transport, kernel_name="xpython", heartbeat=False) as client:
        kernel.start()
        await client.wait_for_ready(timeout=5)
        sent_before = transport.sent_count
        for call in (client.create_subshell, client.list_subshells):
            with pytest.raises(UnsupportedFeature, match=r"xpython.*kernel subshells"):
                await call()
        with pytest.raises(UnsupportedFeature):
            await client.delete_subshell("x")
        assert transport.sent_count == sent_before
        assert await client.supports("debugger") is False
    await kernel.stop()


async def test_subshell_support_asks_kernel_info_once(
    client: AsyncKernelClient, kernel: FakeKernel
) -> None:
    sub = await client.create_subshell()
    await client.create_subshell()
    assert len(kernel.of_type("kernel_info_request")) == 1
    assert "AsyncSubshell" in repr(sub)
    assert sub.client is client


async def test_subshell_close_after_client_death_sends_nothing(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    sub = await client.create_subshell()
    client.notify_dead(KernelDied())
    count = transport.sent_count
    await sub.aclose()
    assert transport.sent_count == count


async def test_bad_create_subshell_reply(
    client: AsyncKernelClient, transport: MemoryTransport, kernel: FakeKernel
) -> None:
    await client.kernel_info()
    await kernel.stop()
    task = asyncio.create_task(client.create_subshell())
    _, request = await transport.receive()
    transport.reply(request, "create_subshell_reply", {"status": "ok"}, channel="control")
    with pytest.raises(RemoteProtocolError, match="no subshell_id"):
        await task


async def test_deleting_a_busy_subshell_fails_its_requests(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    sub = await client.create_subshell()
    busy = asyncio.create_task(sub.execute("hold"))
    main = asyncio.create_task(client.execute("hold"))
    await asyncio.sleep(0.01)
    await sub.aclose()
    with pytest.raises(KernelError, match="was deleted while its execute_request was pending"):
        await asyncio.wait_for(busy, 1)
    assert not main.done()
    main.cancel()


async def test_closed_streams_and_handlers_leave_nothing_behind(
    client: AsyncKernelClient,
) -> None:
    for _ in range(3):
        client.iopub_messages().close()
    assert client.core.handler_count() == 0
    calls: list[str] = []
    removers: list[Any] = []

    def once(msg: Message) -> None:  # unsubscribes itself while being called
        calls.append("once")
        removers[0]()

    removers.append(client.add_iopub_handler(once))
    client.add_iopub_handler(lambda m: calls.append("always"))
    await client.execute("1", outputs=[])
    assert calls[:2] == ["once", "always"]
    assert calls.count("once") == 1


async def test_traffic_counts_as_a_heartbeat(
    client: AsyncKernelClient, transport: MemoryTransport
) -> None:
    # A kernel busy flooding IOPub may answer its heartbeat late: it is not dead.
    await asyncio.sleep(0.1)
    transport.alive = False
    flood_until = time.monotonic() + 0.5
    while time.monotonic() < flood_until:
        transport.publish(None, "stream", {"name": "stdout", "text": "x"})
        await asyncio.sleep(0.01)
    transport.alive = True
    assert (await client.execute("1")).content["status"] == "ok"


async def test_a_connection_file_that_lies_fails_with_a_clear_error(tmp_path: Path) -> None:
    """Ports nobody listens on (real sockets): execute(timeout=None) must not hang."""
    ports = allocate_ports(5)
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info = ConnectionInfo(key=b"k", kernel_name="ghost").with_ports(
        **dict(zip(names, ports, strict=True))
    )
    path = write_connection_file(info, tmp_path / "kernel-ghost.json")
    async with AsyncKernelClient.from_connection_file(
        path, heartbeat_interval=0.1, heartbeat_timeout=0.2, first_contact_timeout=0.5
    ) as client:
        started = time.monotonic()
        with pytest.raises(HeartbeatTimeout) as error:
            await asyncio.wait_for(client.execute("1", timeout=None), 10)
        assert time.monotonic() - started < 2.0
        message = str(error.value)
        assert f"never answered at tcp://127.0.0.1:{info.hb_port}" in message
        assert "connection file may be stale" in message
