"""ZMQTransport against kernel-side sockets bound in the test (real ZeroMQ, no kernel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import zmq
import zmq.asyncio

from kernelkit import ClientClosed, KernelError, LocalProtocolError, RemoteProtocolError
from kernelkit._connection import ConnectionInfo, allocate_ports
from kernelkit.protocol import Message, Session
from kernelkit.transport import ZMQTransport

KEY = b"transport-test-key"


class Recorder:
    """A Receiver that queues what it is given."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        self.rejected: list[tuple[str, RemoteProtocolError]] = []
        self.lost: list[KernelError] = []

    def message_received(self, channel: str, message: Message) -> None:
        self.messages.put_nowait((channel, message))

    def message_rejected(self, channel: str, error: RemoteProtocolError) -> None:
        self.rejected.append((channel, error))

    def transport_lost(self, error: KernelError) -> None:
        self.lost.append(error)

    async def next(self) -> tuple[str, Message]:
        return await asyncio.wait_for(self.messages.get(), 5)


class KernelSide:
    """The five kernel sockets (ROUTER, ROUTER, ROUTER, PUB, REP), bound on random ports."""

    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.session = Session(KEY)
        kinds = {
            "shell": zmq.ROUTER,
            "control": zmq.ROUTER,
            "stdin": zmq.ROUTER,
            "iopub": zmq.PUB,
            "hb": zmq.REP,
        }
        self.sockets: dict[str, Any] = {}
        ports: dict[str, int] = {}
        for name, kind in kinds.items():
            sock = self.ctx.socket(kind)
            sock.linger = 0
            ports[f"{name}_port"] = sock.bind_to_random_port("tcp://127.0.0.1")
            self.sockets[name] = sock
        self.info = ConnectionInfo(key=KEY, kernel_name="fake").with_ports(**ports)

    async def recv(self, channel: str) -> tuple[list[bytes], Message]:
        frames = await asyncio.wait_for(self.sockets[channel].recv_multipart(), 5)
        return self.session.deserialize(frames)

    async def send(self, channel: str, msg: Message, identities: list[bytes]) -> None:
        await self.sockets[channel].send_multipart(self.session.serialize(msg, identities))

    async def publish_until_received(self, recorder: Recorder, msg_type: str) -> Message:
        """PUB drops messages until the SUB's subscription arrived: repeat until one lands."""
        for _ in range(200):
            await self.send("iopub", self.session.msg(msg_type), [b"topic"])
            try:
                _, msg = await asyncio.wait_for(recorder.messages.get(), 0.05)
            except asyncio.TimeoutError:
                continue
            return msg
        raise AssertionError("IOPub never delivered")

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
async def kernel() -> AsyncIterator[KernelSide]:
    side = KernelSide()
    yield side
    side.close()


@pytest.fixture
async def connected(kernel: KernelSide) -> AsyncIterator[tuple[ZMQTransport, Recorder]]:
    transport = ZMQTransport(kernel.info)
    recorder = Recorder()
    await transport.connect(recorder)
    yield transport, recorder
    await transport.aclose()


async def test_shell_round_trip_and_shared_identity(
    kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]
) -> None:
    transport, recorder = connected
    session = transport.session
    request = session.msg("execute_request", {"code": "1"})
    transport.send("shell", request)
    shell_ids, got = await kernel.recv("shell")
    assert shell_ids == [transport.identity]
    assert got.header.msg_id == request.header.msg_id
    await kernel.send("shell", kernel.session.msg("execute_reply", parent=got), shell_ids)
    channel, reply = await recorder.next()
    assert channel == "shell"
    assert reply.parent_id == request.header.msg_id

    # The kernel reaches the same client on stdin with the shell identity.
    ask = kernel.session.msg("input_request", {"prompt": "?"}, parent=got)
    await kernel.send("stdin", ask, shell_ids)
    channel, received = await recorder.next()
    assert (channel, received.header.msg_type) == ("stdin", "input_request")
    transport.send("stdin", session.msg("input_reply", {"value": "x"}, parent=received))
    stdin_ids, answer = await kernel.recv("stdin")
    assert stdin_ids == shell_ids
    assert answer.content == {"value": "x"}

    transport.send("control", session.msg("interrupt_request"))
    control_ids, _ = await kernel.recv("control")
    assert control_ids == shell_ids


async def test_two_transports_have_their_own_identity(kernel: KernelSide) -> None:
    a, b = ZMQTransport(kernel.info), ZMQTransport(kernel.info)
    assert a.identity != b.identity
    ra, rb = Recorder(), Recorder()
    await a.connect(ra)
    await b.connect(rb)
    try:
        for t in (a, b):
            t.send("shell", t.session.msg("kernel_info_request"))
        for _ in range(2):
            ids, req = await kernel.recv("shell")
            await kernel.send("shell", kernel.session.msg("kernel_info_reply", parent=req), ids)
        (_, ma), (_, mb) = await ra.next(), await rb.next()
        assert ma.parent_header is not None
        assert mb.parent_header is not None
        assert ma.parent_header.session == a.session.session_id
        assert mb.parent_header.session == b.session.session_id
    finally:
        a.close()
        b.close()


async def test_iopub_delivery_and_rejection(
    kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]
) -> None:
    _, recorder = connected
    msg = await kernel.publish_until_received(recorder, "status")
    assert msg.header.msg_type == "status"
    forged = kernel.session.serialize(kernel.session.msg("stream"), [b"topic"])
    forged[2] = b"f" * 64
    await kernel.sockets["iopub"].send_multipart(forged)
    await kernel.send("iopub", kernel.session.msg("display_data"), [b"topic"])
    _, after = await recorder.next()
    assert after.header.msg_type == "display_data"
    assert len(recorder.rejected) == 1
    assert recorder.rejected[0][0] == "iopub"


async def test_many_iopub_messages_in_order(
    kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]
) -> None:
    _, recorder = connected
    await kernel.publish_until_received(recorder, "status")
    for i in range(2000):  # more than one read batch
        msg = kernel.session.msg("stream", {"text": str(i)})
        await kernel.send("iopub", msg, [b"t"])
    got = [(await recorder.next())[1].content["text"] for _ in range(2000)]
    assert got == [str(i) for i in range(2000)]


async def test_heartbeat(kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]) -> None:
    transport, _ = connected
    assert transport.supports_heartbeat

    async def echo(times: int) -> None:
        for _ in range(times):
            frames = await kernel.sockets["hb"].recv_multipart()
            await kernel.sockets["hb"].send_multipart(frames)

    echoer = asyncio.create_task(echo(2))
    assert await transport.ping(2.0) is True
    assert await transport.ping(2.0) is True
    await echoer
    # Nobody echoes now: the ping fails after its timeout, and a later one still works.
    assert await transport.ping(0.05) is False
    echoer = asyncio.create_task(echo(2))  # answers the stale ping, then the new one
    assert await transport.ping(2.0) is True
    echoer.cancel()


async def test_ping_without_kernel_fails() -> None:
    ports = allocate_ports(5)
    info = ConnectionInfo(
        shell_port=ports[0],
        iopub_port=ports[1],
        stdin_port=ports[2],
        control_port=ports[3],
        hb_port=ports[4],
    )
    transport = ZMQTransport(info)
    await transport.connect(Recorder())
    try:
        assert await transport.ping(0.05) is False
        assert await transport.ping(0.05) is False
    finally:
        transport.close()


async def test_sends_queue_past_the_high_water_mark() -> None:
    # No kernel yet: the DEALER's pipe fills up (1000 by default), the rest wait in order.
    ports = allocate_ports(5)
    info = ConnectionInfo(
        key=KEY,
        shell_port=ports[0],
        iopub_port=ports[1],
        stdin_port=ports[2],
        control_port=ports[3],
        hb_port=ports[4],
    )
    transport = ZMQTransport(info)
    await transport.connect(Recorder())
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    try:
        for i in range(1500):
            transport.send("shell", transport.session.msg("comm_msg", {"i": i}))
        router.bind(info.url("shell"))
        receiver = Session(KEY)
        got = []
        for _ in range(1500):
            frames = await asyncio.wait_for(router.recv_multipart(), 5)
            got.append(receiver.deserialize(frames)[1].content["i"])
        assert got == list(range(1500))
    finally:
        transport.close()
        router.close(linger=0)
        ctx.term()


async def test_send_errors(kernel: KernelSide) -> None:
    transport = ZMQTransport(kernel.info)
    msg = transport.session.msg("kernel_info_request")
    with pytest.raises(ClientClosed, match="not connected"):
        transport.send("shell", msg)
    await transport.connect(Recorder())
    with pytest.raises(ClientClosed, match="already connected"):
        await transport.connect(Recorder())
    with pytest.raises(LocalProtocolError, match="receive-only"):
        transport.send("iopub", msg)
    with pytest.raises(LocalProtocolError, match="shell, control or stdin"):
        transport.send("hb", msg)
    assert "open" in repr(transport)
    transport.close()
    transport.close()
    assert transport.closed
    assert "closed" in repr(transport)
    with pytest.raises(ClientClosed, match="closed"):
        transport.send("shell", msg)
    with pytest.raises(ClientClosed):
        await transport.ping(1)
    with pytest.raises(ClientClosed):
        await transport.connect(Recorder())


def test_ports_must_be_chosen() -> None:
    with pytest.raises(LocalProtocolError, match="no ports yet"):
        ZMQTransport(ConnectionInfo(kernel_name="k"))


async def test_bad_endpoint_is_a_kernel_error() -> None:
    info = ConnectionInfo(
        ip="not an address",
        shell_port=1,
        iopub_port=2,
        stdin_port=3,
        control_port=4,
        hb_port=5,
    )
    transport = ZMQTransport(info)
    with pytest.raises(KernelError, match="cannot connect"):
        await transport.connect(Recorder())


async def test_session_and_info(kernel: KernelSide) -> None:
    session = Session(KEY, session_id="mine")
    transport = ZMQTransport(kernel.info, session, identity=b"me")
    assert transport.session is session
    assert transport.identity == b"me"
    assert transport.connection_info is kernel.info
    assert "new" in repr(transport)


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop that refuses add_reader for kernelkit's sockets (as a proactor loop does)."""

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
        if getattr(callback, "__qualname__", "").startswith("ZMQSocket."):
            raise NotImplementedError
        super().add_reader(fd, callback, *args)


def test_reader_falls_back_to_zmq_asyncio() -> None:
    async def main() -> None:
        side = KernelSide()
        transport = ZMQTransport(side.info)
        recorder = Recorder()
        await transport.connect(recorder)
        try:
            readers = [t for t in asyncio.all_tasks() if "_read_with_zmq_asyncio" in repr(t)]
            assert len(readers) == 6  # one per socket (hb included), one for the IOPub monitor
            transport.send("shell", transport.session.msg("kernel_info_request"))
            ids, req = await side.recv("shell")
            await side.send("shell", side.session.msg("kernel_info_reply", parent=req), ids)
            channel, reply = await recorder.next()
            assert channel == "shell"
            assert reply.parent_id == req.header.msg_id
            await side.publish_until_received(recorder, "status")
        finally:
            transport.close()
            await asyncio.sleep(0)  # let the cancelled readers finish
            side.close()

    loop = _NoReaderLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def echo_heartbeats(side: KernelSide) -> None:
    """Answer pings on ``side``'s heartbeat socket until cancelled."""
    while True:
        await side.sockets["hb"].send_multipart(await side.sockets["hb"].recv_multipart())


async def test_reconnect_follows_the_kernel_to_new_ports(
    kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]
) -> None:
    transport, recorder = connected
    identity = transport.identity
    transport.reconnect(kernel.info)  # the same endpoints: nothing to do
    echoer = asyncio.create_task(echo_heartbeats(kernel))
    assert await transport.ping(2.0)
    echoer.cancel()
    moved = KernelSide()  # the restarted kernel, on other ports
    echoer = asyncio.create_task(echo_heartbeats(moved))
    try:
        transport.reconnect(moved.info)
        assert transport.connection_info == moved.info
        assert transport.identity == identity
        request = transport.session.msg("kernel_info_request")
        transport.send("shell", request)
        ids, got = await moved.recv("shell")
        assert ids == [identity]
        await moved.send("shell", moved.session.msg("kernel_info_reply", parent=got), ids)
        channel, reply = await recorder.next()
        assert (channel, reply.parent_id) == ("shell", request.header.msg_id)
        assert await moved.publish_until_received(recorder, "status")
        assert await transport.ping(2.0)
    finally:
        echoer.cancel()
        await asyncio.wait([echoer])
        moved.close()


async def test_reconnect_refuses_another_key_and_a_closed_transport(
    kernel: KernelSide, connected: tuple[ZMQTransport, Recorder]
) -> None:
    transport, _ = connected
    other = ConnectionInfo(key=b"another-key", kernel_name="fake").with_ports(
        **dict(
            zip(
                ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"),
                allocate_ports(5),
                strict=True,
            )
        )
    )
    with pytest.raises(KernelError, match="new key"):
        transport.reconnect(other)
    with pytest.raises(KernelError, match="ports are not known"):
        transport.reconnect(ConnectionInfo(key=KEY, kernel_name="fake"))
    assert transport.connection_info == kernel.info
    await transport.aclose()
    with pytest.raises(ClientClosed):
        transport.reconnect(kernel.info)


async def test_reconnect_before_connect_only_changes_the_target(kernel: KernelSide) -> None:
    first = ConnectionInfo(key=KEY, kernel_name="fake").with_ports(
        **dict(
            zip(
                ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"),
                allocate_ports(5),
                strict=True,
            )
        )
    )
    transport = ZMQTransport(first)
    transport.reconnect(kernel.info)
    await transport.connect(Recorder())
    echoer = asyncio.create_task(echo_heartbeats(kernel))
    try:
        assert await transport.ping(2.0)
    finally:
        echoer.cancel()
        await asyncio.wait([echoer])
        await transport.aclose()
