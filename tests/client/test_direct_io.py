"""The blocking client's direct lane: shell requests done in the calling thread.

Against the fake kernel as a real process over ZeroMQ (the lane exists only there), and
against a hand-played kernel for the faults (a reply over the size limit, a wrong key).
Each test checks that the lane was used, so a silent fall-back to the loop thread
cannot make it pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from kernelkit import ClientClosed, KernelDied, KernelTimeout, MessageTooLarge, SignatureMismatch
from kernelkit.client import KernelClient
from kernelkit.client import _core as core_module
from kernelkit.manager import KernelManager
from kernelkit.protocol import DELIMITER, Message, Session
from kernelkit.transport import ZMQTransport
from kernelkit.transport import _zmqlane as lane_module
from tests.transport.test_zmq_transport import KernelSide


def _types(messages: list[Message]) -> list[str]:
    return [m.header.msg_type for m in messages]


def test_direct_requests_answer_as_the_loop_path_does(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    assert kc.direct_io
    results = {}
    for direct in (True, False):
        kc.direct_io = direct
        outputs: list[Message] = []
        reply = kc.execute("print a; result b", outputs=outputs, timeout=20)
        shown: list[Message] = []
        kc.execute_interactive("print c", output_hook=shown.append, timeout=20)
        info = kc.kernel_info(timeout=20)
        results[direct] = (
            reply.content["status"],
            _types(outputs),
            [m.content.get("text") for m in outputs],
            _types(shown),
            info.content["implementation"],
        )
    assert results[True] == results[False]
    assert results[True][3] == ["status", "execute_input", "stream", "status"]
    assert lane_calls == ["execute_request", "execute_request", "kernel_info_request"]


def test_handlers_see_what_a_direct_request_read_in_order(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    seen: list[Message] = []
    idle: set[str | None] = set()  # the requests whose idle status the handler saw
    changed = threading.Condition()

    def handler(msg: Message) -> None:
        seen.append(msg)
        if msg.header.msg_type == "status" and msg.content["execution_state"] == "idle":
            with changed:
                idle.add(msg.parent_id)  # (wait_for_ready's may come after it returned)
                changed.notify_all()

    kc.add_iopub_handler(handler)
    reply = kc.execute("print one; print two", timeout=20)
    with changed:
        assert changed.wait_for(lambda: reply.parent_id in idle, timeout=10)
    mine = [m for m in seen if m.parent_id == reply.parent_id]
    assert _types(mine) == ["status", "execute_input", "stream", "stream", "status"]
    assert [m.content.get("text") for m in mine][2:4] == ["one\n", "two\n"]
    assert lane_calls == ["execute_request"]
    assert kc.execution_state == "idle"


def test_threads_share_one_client(kc: KernelClient, lane_calls: list[str]) -> None:
    def work(n: int) -> list[str]:
        got = []
        for i in range(20):
            reply = kc.execute(f"result {n}-{i}", outputs=(out := []), timeout=30)
            assert reply.content["status"] == "ok"
            got.append(out[-1].content["data"]["text/plain"])
            assert kc.kernel_info(timeout=30).msg_type == "kernel_info_reply"
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    assert results == [[f"{n}-{i}" for i in range(20)] for n in range(4)]
    assert lane_calls  # some went directly, the others through the loop
    assert kc.pending_requests == 0


def test_timeout_then_the_late_reply_is_not_taken_for_the_next(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    with pytest.raises(KernelTimeout, match=r"no reply to execute_request within 0\.2 s"):
        kc.execute("sleep 0.6", timeout=0.2)
    outputs: list[Message] = []
    kc.execute("result after", outputs=outputs, timeout=20)
    assert outputs[-1].content["data"]["text/plain"] == "after"
    assert lane_calls == ["execute_request!", "execute_request"]


def test_stdin_is_answered_from_a_direct_request(kc: KernelClient, lane_calls: list[str]) -> None:
    asked: list[str] = []

    def answer(request: Message) -> str:
        asked.append(request.content["prompt"])
        return "bob"

    shown: list[Message] = []
    kc.execute_interactive(
        "input name", stdin_hook=answer, output_hook=shown.append, allow_stdin=True, timeout=20
    )
    assert asked == ["name"]
    assert [m.content.get("text") for m in shown if m.header.msg_type == "stream"] == ["bob"]
    assert lane_calls == ["execute_request"]


def test_a_failing_output_hook_raises_and_the_client_goes_on(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    def broken(msg: Message) -> None:
        if msg.header.msg_type == "stream":
            raise ValueError("hook broke")

    with pytest.raises(ValueError, match="hook broke"):
        kc.execute_interactive("print x", output_hook=broken, timeout=20)
    assert kc.kernel_info(timeout=20).msg_type == "kernel_info_reply"
    assert kc.pending_requests == 0
    assert lane_calls == ["execute_request!", "kernel_info_request"]


def test_kernel_death_ends_a_direct_wait_at_once(
    km: KernelManager, kc: KernelClient, lane_calls: list[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(KernelDied):
        kc.execute("sleep 0.3; exit 3", timeout=60)
    assert time.monotonic() - started < 20  # told by the manager, not the 60 s timeout
    with pytest.raises(KernelDied):
        kc.kernel_info(timeout=5)
    assert lane_calls[0] == "execute_request!"


def test_close_from_another_thread_ends_a_direct_wait(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(kc.execute, "sleep 30", timeout=60)
        deadline = time.monotonic() + 10
        while kc.pending_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kc.core.direct  # the request waits in the lane
        kc.close()
        with pytest.raises(ClientClosed):
            pending.result(timeout=10)
    assert lane_calls == ["execute_request!"]


# -- faults, with a hand-played kernel --------------------------------------------------


def _kernel_info_content() -> dict[str, Any]:
    return {
        "status": "ok",
        "protocol_version": "5.3",
        "implementation": "t",
        "implementation_version": "1",
        "banner": "",
        "help_links": [],
        "language_info": {"name": "t", "version": "1", "mimetype": "", "file_extension": ""},
    }


@pytest.fixture
async def kernel() -> Any:
    side = KernelSide()
    yield side
    side.close()


async def test_a_reply_over_the_limit_fails_a_direct_request_naming_it(
    kernel: KernelSide, lane_calls: list[str]
) -> None:
    transport = ZMQTransport(kernel.info, max_message_size=10_000)
    with KernelClient(transport, kernel_name="fake", heartbeat=False) as kc:
        task = asyncio.create_task(asyncio.to_thread(kc.kernel_info, timeout=60))
        ids, request = await kernel.recv("shell")
        reply = kernel.session.msg("kernel_info_reply", {"status": "ok"}, parent=request)
        frames = kernel.session.serialize(reply)
        big = [*frames[: frames.index(DELIMITER) + 6], b'"' + b"x" * 20_000 + b'"']
        await kernel.sockets["shell"].send_multipart([*ids, *big])
        with pytest.raises(MessageTooLarge, match="over the limit of 10000 bytes"):
            await asyncio.wait_for(task, 10)  # not the request's 60 s
        assert kc.core.direct == {}
        # The channel was reopened: the next request gets its reply.
        task = asyncio.create_task(asyncio.to_thread(kc.kernel_info, timeout=20))
        ids, request = await kernel.recv("shell")
        ok = kernel.session.msg("kernel_info_reply", _kernel_info_content(), parent=request)
        await kernel.send("shell", ok, ids)
        assert (await asyncio.wait_for(task, 10)).content["status"] == "ok"
    assert lane_calls == ["kernel_info_request!", "kernel_info_request"]


async def test_a_kernel_with_another_key_fails_a_direct_request_promptly(
    kernel: KernelSide, lane_calls: list[str]
) -> None:
    info = dataclasses.replace(kernel.info, key=b"not-the-kernels-key")
    with KernelClient.from_connection_info(info, heartbeat=False) as kc:
        task = asyncio.create_task(asyncio.to_thread(kc.kernel_info, timeout=None))
        frames = await asyncio.wait_for(kernel.sockets["shell"].recv_multipart(), 5)
        ids = frames[: frames.index(DELIMITER)]
        _, request = Session(b"not-the-kernels-key").deserialize(frames)
        for _ in range(3):  # signed with the kernel's key: refused
            reply = kernel.session.msg("kernel_info_reply", {"status": "ok"}, parent=request)
            await kernel.send("shell", reply, ids)
        with pytest.raises(SignatureMismatch, match="do not match"):
            await asyncio.wait_for(task, 10)
        with pytest.raises(SignatureMismatch):
            kc.kernel_info(timeout=10)  # new requests fail at once
    assert lane_calls == ["kernel_info_request!", "kernel_info_request!"]


def test_what_a_direct_request_read_reaches_the_core_without_waking_it_each_time(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    from kernelkit.transport._zmqlane import BACKLOG

    lane = kc.transport.direct_lane()  # type: ignore[attr-defined]
    assert lane is not None
    heard = kc.core.heard
    for _ in range(300):
        kc.kernel_info(timeout=20)
        assert len(lane.pending) <= BACKLOG  # handed over in batches, never unbounded
    assert len(lane_calls) == 300
    deadline = time.monotonic() + 10
    while kc.execution_state != "idle" and time.monotonic() < deadline:
        time.sleep(0.01)  # the last idle status may follow the reply
    assert kc.execution_state == "idle"  # reading state catches up first
    assert not lane.pending
    assert kc.core.heard >= heard + 300
    # The loop takes the sockets back when it needs them: a request through it works.
    kc.direct_io = False
    assert kc.kernel_info(timeout=20).msg_type == "kernel_info_reply"


def test_another_thread_is_not_held_up_by_a_long_direct_request(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    sub = kc.create_subshell(timeout=20)
    with ThreadPoolExecutor(1) as pool:
        long = pool.submit(sub.execute, "sleep 3", timeout=30)
        deadline = time.monotonic() + 10
        while not kc.core.direct and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kc.core.direct  # the subshell's request holds the lane
        kc.kernel_info(timeout=20)  # through the loop; its reply is read by the lane
        outputs: list[Message] = []
        kc.execute("result main", outputs=outputs, timeout=20)  # and its idle status
        assert not long.done()  # handed over as they came, not when the long one ended
        assert outputs[-1].content["data"]["text/plain"] == "main"
        assert long.result(timeout=30).content["status"] == "ok"
    assert lane_calls[-1] == "execute_request"


def test_a_flood_of_output_reaches_the_hook_whole_and_in_order(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    # The calling thread reads, verifies and shows the whole flood itself (nobody else
    # waits for the sockets): nothing lost, nothing twice.
    code = "; ".join(f"print {i}" for i in range(150))
    for _ in range(10):
        shown: list[Message] = []
        kc.execute_interactive(code, output_hook=shown.append, timeout=30)
        texts = [m.content["text"] for m in shown if m.header.msg_type == "stream"]
        assert texts == [f"{i}\n" for i in range(150)]
    assert lane_calls == ["execute_request"] * 10
    assert kc.rejected_messages == 0


def test_a_flood_taken_over_by_the_loop_midway_reaches_the_hook_whole_and_in_order(
    kc: KernelClient, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Midway through a flood, another thread asks for something while the hook is slow:
    the loop takes the sockets back, and hands the rest over through the request's
    slot, after what this thread read."""
    revoked: list[bool] = []
    real = lane_module.DirectLane._revoke

    def revoke(self: lane_module.DirectLane, lease: lane_module.Lease) -> None:
        revoked.append(True)
        real(self, lease)

    monkeypatch.setattr(lane_module.DirectLane, "_revoke", revoke)
    code = "; ".join(f"print {i}" for i in range(150))
    shown: list[Message] = []
    asked: list[Future[Message]] = []
    with ThreadPoolExecutor(1) as pool:

        def hook(msg: Message) -> None:
            shown.append(msg)
            if msg.content.get("text") == "50\n":
                asked.append(pool.submit(kc.kernel_info, timeout=10))
                time.sleep(0.1)  # the loop needs the sockets: it takes them

        for _ in range(3):
            shown.clear()
            asked.clear()
            kc.execute_interactive(code, output_hook=hook, timeout=30)
            texts = [m.content["text"] for m in shown if m.header.msg_type == "stream"]
            assert texts == [f"{i}\n" for i in range(150)]
            assert asked[0].result(timeout=10).msg_type == "kernel_info_reply"
    assert revoked
    assert lane_calls[:1] == ["execute_request"]
    assert kc.rejected_messages == 0


def test_a_slow_output_hook_keeps_the_lane_while_nobody_else_waits(
    kc: KernelClient, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook longer than the lane's IDLE time is no reason to take the sockets back
    when nobody else waits for what they bring."""
    revoked: list[bool] = []
    real = lane_module.DirectLane._revoke

    def revoke(self: lane_module.DirectLane, lease: lane_module.Lease) -> None:
        revoked.append(True)
        real(self, lease)

    monkeypatch.setattr(lane_module.DirectLane, "_revoke", revoke)
    shown: list[str] = []

    def slow(msg: Message) -> None:
        if msg.header.msg_type == "stream":
            time.sleep(lane_module.IDLE * 3)
            shown.append(msg.content["text"])

    kc.execute_interactive("print a; print b; print c", output_hook=slow, timeout=20)
    assert shown == ["a\n", "b\n", "c\n"]
    assert not revoked
    assert lane_calls == ["execute_request"]


def test_a_request_from_an_output_hook_takes_the_sockets_back_at_once(
    kc: KernelClient, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook's thread holds the lane and waits on the loop for the nested request:
    the loop takes the sockets back before sending it, not only once the borrower has
    looked away for IDLE seconds (here made longer than the nested request's timeout)."""
    monkeypatch.setattr(lane_module, "IDLE", 30.0)
    infos: list[str] = []

    def hook(msg: Message) -> None:
        if msg.header.msg_type == "stream":
            infos.append(kc.kernel_info(timeout=5).msg_type)

    reply = kc.execute_interactive("print x; print y", output_hook=hook, timeout=20)
    assert reply.content["status"] == "ok"
    assert infos == ["kernel_info_reply", "kernel_info_reply"]
    assert lane_calls == ["execute_request"]  # the nested ones went through the loop


def test_a_direct_requests_own_outputs_reach_the_core_only_while_someone_listens(
    km: KernelManager, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no handler or stream subscribed, the core would do nothing with the
    request's outputs: they are not handed over (its statuses and reply are). With one
    subscribed, the core (and the handler) gets every message, in order."""
    got: list[tuple[str, Message]] = []
    real = core_module.ClientCore.message_received

    def recording(self: core_module.ClientCore, channel: str, message: Message) -> None:
        got.append((channel, message))
        real(self, channel, message)

    # On the class, before the client connects (its transport binds the method).
    monkeypatch.setattr(core_module.ClientCore, "message_received", recording)
    with km.client() as kc:
        kc.wait_for_ready(timeout=20)
        for listening in (False, True):
            if listening:
                kc.add_iopub_handler(lambda msg: None)
            outputs: list[Message] = []
            reply = kc.execute("print a; print b", outputs=outputs, timeout=20)
            assert _types(outputs) == ["execute_input", "stream", "stream"]
            deadline = time.monotonic() + 10
            while kc.execution_state != "idle" and time.monotonic() < deadline:
                time.sleep(0.01)  # reading state catches up; the idle status may follow
            mine = [(channel, m) for channel, m in got if m.parent_id == reply.parent_id]
            shell = [m for channel, m in mine if channel == "shell"]
            iopub = [m for channel, m in mine if channel == "iopub"]
            assert _types(shell) == ["execute_reply"]
            if listening:
                assert _types(iopub) == ["status", "execute_input", "stream", "stream", "status"]
            else:
                assert [m.content["execution_state"] for m in iopub] == ["busy", "idle"]
    assert lane_calls == ["execute_request", "execute_request"]
