"""The direct lane's hard cases, found by review (each failed before its fix):
re-entrance from hooks, slow hooks, flushes inside flushes, interrupts at bad moments,
a busy loop, deleted subshells, state read during a long request, restarts.

Against the fake kernel as a real process, as tests/client/test_direct_io.py does; most
run with the lane on and off (the loop path is the reference).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kernelkit import KernelError
from kernelkit.client import KernelClient
from kernelkit.client import _core as core_module
from kernelkit.client import _direct as direct_module
from kernelkit.manager import KernelManager
from kernelkit.protocol import Message, Session
from kernelkit.transport import _zmqlane as lane_module


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, Message]]:
    """Every message any core takes in, in order: (id of the core, channel, message).
    Patched on the class before the client connects (its transport binds the method)."""
    got: list[tuple[int, str, Message]] = []
    real = core_module.ClientCore.message_received

    def recording(self: Any, channel: str, message: Message) -> None:
        got.append((id(self), channel, message))
        real(self, channel, message)

    monkeypatch.setattr(core_module.ClientCore, "message_received", recording)
    return got


def _mine(got: list[tuple[int, str, Message]], kc: KernelClient, msg_id: str) -> list[str]:
    return [
        m.header.msg_type
        + (f":{m.content['execution_state']}" if m.header.msg_type == "status" else "")
        for core, channel, m in got
        if core == id(kc.core) and channel == "iopub" and m.parent_id == msg_id
    ]


# -- 1. a blocking request made from an output/stdin hook of a direct request ----------


@pytest.mark.parametrize("direct", [True, False])
def test_a_request_made_from_an_output_hook_is_answered(
    kc: KernelClient, lane_calls: list[str], direct: bool
) -> None:
    """The loop path calls output_hook in the caller's thread while the loop keeps
    reading: a hook may make a blocking request. In the direct lane the caller holds the
    lent shell socket; the nested request goes through the loop, whose reader parks on
    the lent socket: nobody reads its reply until the nested request times out."""
    kc.direct_io = direct
    infos: list[str] = []

    def hook(msg: Message) -> None:
        if msg.header.msg_type == "stream" and not infos:
            infos.append(kc.kernel_info(timeout=3).msg_type)

    reply = kc.execute_interactive("print x; sleep 0.2", output_hook=hook, timeout=20)
    assert reply.content["status"] == "ok"
    assert infos == ["kernel_info_reply"]


# -- 2. the loop reads a socket given back un-parked before the backlog is handed over --


def test_the_loop_does_not_take_in_iopub_before_what_a_direct_request_read(
    km: KernelManager,
    lane_calls: list[str],
    received: list[tuple[int, str, Message]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A socket given back without the loop's reader having parked (the loop was busy
    during the loan, or lost the race to the borrower for the fd) is read by the loop at
    once: what arrives next on it reaches the core before what the borrower read, which
    waits for the idle tick. Here another client's request, sent after ours ended, is
    taken in first; our request's idle status then lands last, so execution_state says
    'idle' while the kernel is busy with the other request."""
    monkeypatch.setattr(lane_module, "IDLE", 1.0)  # a wider window; 20 ms shows it too
    info = km.connection_info
    assert info is not None
    with km.client() as kc, KernelClient.from_connection_info(info) as other:
        kc.wait_for_ready(timeout=20)
        other.wait_for_ready(timeout=20)
        loop = kc.core.loop
        assert loop is not None
        time.sleep(0.1)
        loop.call_soon_threadsafe(time.sleep, 0.4)  # the loop busy during the loan
        time.sleep(0.05)
        reply = kc.execute("print mine", outputs=[], timeout=10)
        assert lane_calls == ["execute_request"]
        other.direct_io = False
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(other.execute, "sleep 1", timeout=10)
            time.sleep(0.6)  # our loop is awake again; the other request runs
            state = kc.execution_state  # catches up first
            theirs = busy.result(timeout=10)
        order = [
            m.parent_id
            for core, channel, m in received
            if core == id(kc.core) and channel == "iopub"
        ]
        ours = [i for i, p in enumerate(order) if p == reply.parent_id]
        others = [i for i, p in enumerate(order) if p == theirs.parent_id]
        assert ours
        assert others
        assert max(ours) < min(others), (ours, others)
        assert state == "busy"  # the kernel runs the other request


# -- 3. a handler reading client state while the loop takes in a hand-over --------------


def test_a_handler_reading_state_does_not_reorder_or_repeat_messages(
    kc: KernelClient, lane_calls: list[str]
) -> None:
    """IOPub handlers run on the loop, inside take_in. Reading kc.execution_state there
    calls caught_up -> LoopThread.call(lane.flush), which on the loop thread runs flush
    at once: re-entrantly. The inner flush takes in later batches before the rest of the
    current one (handlers see outputs out of order), and its take_in resets
    core.forwarding to False, so the rest of the outer batch is also put into the
    pending direct request's slot: the borrower sees those messages twice."""
    seen: list[str] = []
    states: list[str | None] = []
    lane = kc.transport.direct_lane()  # type: ignore[attr-defined]
    assert lane is not None

    def handler(msg: Message) -> None:
        if msg.header.msg_type == "stream":
            seen.append(msg.content["text"].strip())
            deadline = time.monotonic() + 0.15
            while not lane.pending and time.monotonic() < deadline:
                time.sleep(0.002)  # the borrower reads on and hands over meanwhile
        states.append(kc.execution_state)

    kc.add_iopub_handler(handler)
    n = 40  # bursts of 5 outputs, 0.1 s apart: batches of several, and more coming
    code = "; ".join(f"print {i}" + ("; sleep 0.1" if i % 5 == 4 else "") for i in range(n))
    outputs: list[Message] = []
    kc.execute(code, outputs=outputs, timeout=30)
    deadline = time.monotonic() + 10
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    texts = [m.content["text"].strip() for m in outputs if m.header.msg_type == "stream"]
    assert texts == [str(i) for i in range(n)]  # no output twice
    assert seen == [str(i) for i in range(n)]  # in order, once each
    assert lane_calls == ["execute_request"]


# -- 4. deleting a subshell does not fail a direct request pending on it ----------------


@pytest.mark.parametrize("direct", [True, False])
def test_deleting_a_subshell_fails_a_direct_request_pending_on_it(
    kc: KernelClient, lane_calls: list[str], direct: bool
) -> None:
    """The core fails the requests pending on a deleted subshell (the kernel drops their
    replies) through its tracker (_core._forget_subshell); a direct request is tracked
    in call_direct's private tracker, so it waits for its whole timeout instead."""
    kc.direct_io = direct
    sub = kc.create_subshell(timeout=20)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(sub.execute, "sleep 2", timeout=15)
        deadline = time.monotonic() + 10
        while kc.pending_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bool(kc.core.direct) == direct
        kc.delete_subshell(sub.subshell_id, timeout=20)
        started = time.monotonic()
        with pytest.raises(KernelError, match="was deleted"):
            pending.result(timeout=20)
        assert time.monotonic() - started < 10  # not its 15 s timeout


# -- 5. an interrupt right after the lane was opened wedges the client -----------------


def test_an_interrupt_just_after_the_lease_opens_leaves_the_client_usable(
    kc: KernelClient, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """call_direct opens the lease before its try/finally: a KeyboardInterrupt landing on
    the few bytecodes in between (or any exception there) never ends the lease. The lane
    stays busy, and shell/IOPub stay lent: the loop's reader parks on them, so every later
    request (through the loop, since the lane is busy) times out. (DirectLane.open's own
    except clause likewise releases _busy without giving the lent sockets back.) Ctrl-C
    is simulated by the first DirectSlot() raising KeyboardInterrupt."""
    real = direct_module.DirectSlot
    raised: list[bool] = []

    def interrupted(*args: Any, **kw: Any) -> Any:
        if not raised:
            raised.append(True)
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(direct_module, "DirectSlot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kc.kernel_info(timeout=5)
    assert kc.kernel_info(timeout=3).msg_type == "kernel_info_reply"


# -- 6. an interrupt while a direct request reads loses what it had read ----------------


def test_an_interrupt_while_reading_does_not_lose_another_threads_reply(
    kc: KernelClient, lane_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lease.read gathers frames from the sockets, then verifies them; what it read only
    reaches `forward` when it returns. A KeyboardInterrupt during the verification (a
    large message takes a while) loses every message of that read: here another thread's
    reply, so that thread waits for its whole timeout. Ctrl-C is simulated by the
    borrower's (main thread's) verification of a kernel_info_reply raising."""
    main = threading.get_ident()
    real = Session.deserialize
    raised: list[bool] = []

    def deserialize(self: Session, frames: Any) -> Any:
        if (
            threading.get_ident() == main
            and not raised
            and any(b"kernel_info_reply" in bytes(f) for f in frames)
        ):
            raised.append(True)
            raise KeyboardInterrupt
        return real(self, frames)

    sub = kc.create_subshell(timeout=20)  # answers while the main shell sleeps
    monkeypatch.setattr(Session, "deserialize", deserialize)
    with ThreadPoolExecutor(1) as pool:

        def other() -> str:
            while not kc.core.direct:  # the main thread holds the lane
                time.sleep(0.005)
            return sub.kernel_info(timeout=4).msg_type  # through the loop

        info = pool.submit(other)
        with pytest.raises(KeyboardInterrupt):
            kc.execute("sleep 1", timeout=10)
        assert raised
        assert info.result(timeout=10) == "kernel_info_reply"


@pytest.mark.parametrize("direct", [True, False])
def test_a_slow_stdin_hook_does_not_hold_up_another_threads_reply(
    kc: KernelClient, lane_calls: list[str], direct: bool
) -> None:
    """Same root cause as the output-hook test, without any re-entrance: while the
    borrower runs a user hook (a stdin hook waits for a human) it reads nothing, and the
    lent shell/IOPub sockets are read by nobody; another thread's request (here on a
    subshell, which the kernel answers at once) gets no reply until the hook returns."""
    kc.direct_io = direct
    sub = kc.create_subshell(timeout=20)

    def answer(request: Message) -> str:
        time.sleep(4)  # a human typing
        return "bob"

    with ThreadPoolExecutor(1) as pool:
        asking = pool.submit(
            kc.execute_interactive,
            "input name",
            stdin_hook=answer,
            output_hook=lambda m: None,
            allow_stdin=True,
            timeout=20,
        )
        time.sleep(0.5)  # the kernel asked; the hook waits
        assert bool(kc.core.direct) == direct
        started = time.monotonic()
        assert sub.kernel_info(timeout=10).msg_type == "kernel_info_reply"
        assert not asking.done()  # answered while the hook still waits
        assert time.monotonic() - started < 3.4
        asking.result(timeout=20)


# -- 7. state read from another thread during a long direct request is stale ---------


@pytest.mark.parametrize("direct", [True, False])
def test_execution_state_is_busy_while_a_direct_request_runs(
    kc: KernelClient, lane_calls: list[str], direct: bool
) -> None:
    """While a direct request runs, what it read stays in its private `forward` list
    (not in lane.pending) unless someone is 'urgent' or 'live' at that moment; caught_up()
    only flushes lane.pending. So another thread reading kc.execution_state during a
    long request sees 'idle' for its whole run (a handler or stream added meanwhile sees
    nothing either: `live` is computed once, when the request starts)."""
    kc.direct_io = direct
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(kc.execute, "sleep 2", timeout=20)
        time.sleep(0.7)
        assert bool(kc.core.direct) == direct
        state = kc.execution_state
        running.result(timeout=20)
    assert state == "busy"


# -- checked and found sound ------------------------------------------------------------


def test_a_restart_fails_a_pending_direct_request_and_the_lane_works_after(
    km: KernelManager, kc: KernelClient, lane_calls: list[str]
) -> None:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(kc.execute, "hold", timeout=30)
        deadline = time.monotonic() + 10
        while not kc.core.direct and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kc.core.direct
        started = time.monotonic()
        km.restart_kernel()
        with pytest.raises(KernelError, match="restarted"):
            pending.result(timeout=20)
        assert time.monotonic() - started < 10
    kc.wait_for_ready(timeout=20)
    outputs: list[Message] = []
    kc.execute("result again", outputs=outputs, timeout=20)
    assert outputs[-1].content["data"]["text/plain"] == "again"
    assert kc.kernel_info(timeout=20).msg_type == "kernel_info_reply"
    assert lane_calls[0] == "execute_request!"
    assert lane_calls[-2:] == [
        "execute_request",
        "kernel_info_request",
    ]
    deadline = time.monotonic() + 10
    while kc.execution_state != "idle" and time.monotonic() < deadline:
        time.sleep(0.01)  # the idle status may follow the reply
    assert kc.execution_state == "idle"
