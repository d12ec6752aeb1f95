"""The ZeroMQ transport: a client's five sockets to one kernel, driven by asyncio.

Sockets: DEALER for shell, control and stdin (one random identity per transport, shared
by all three, so the kernel's stdin ROUTER can reach the socket that sent the execute
request), SUB for IOPub (subscribed to everything), REQ for the heartbeat.

Each socket's file descriptor is watched with the event loop's ``add_reader``; the
callback drains every message that is ready, verifies it with the :class:`Session` and
hands it to the receiver, all synchronously: no future or task per message. Loops without
``add_reader`` (Windows' proactor loop) get one ``zmq.asyncio`` reader task per socket
instead, which drains the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import ClientClosed, KernelError, LocalProtocolError, RemoteProtocolError
from kernelkit.protocol import Message, Session
from kernelkit.transport._base import Receiver

__all__ = ["ZMQTransport"]

log = logging.getLogger("kernelkit.transport")

# Plain ints, not pyzmq's enum members: every `&` or `|` on an enum builds a new member,
# which costs more than the socket call it guards.
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_Again = zmq.Again

# At most this many messages are read per wake-up before yielding to the loop, so an
# IOPub flood cannot starve the other sockets and the caller's tasks.
_BATCH = 512

_MESSAGE_CHANNELS = ("shell", "control", "stdin", "iopub")
_SEND_CHANNELS = frozenset(("shell", "control", "stdin"))


def _events(sock: zmq.Socket[bytes]) -> int:
    """The socket's ZMQ_EVENTS (reading them also re-arms its edge-triggered fd)."""
    events: int = sock.getsockopt(_EVENTS)  # type: ignore[assignment]
    return events


class _Socket:
    """One ZeroMQ socket, its reader and its queue of messages waiting to be sent."""

    __slots__ = (
        "_handle",
        "_loop",
        "_on_error",
        "_reader_task",
        "_scheduled",
        "closed",
        "fd",
        "name",
        "outbox",
        "sock",
    )

    def __init__(
        self,
        name: str,
        sock: zmq.Socket[bytes],
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[list[bytes]], None],
        on_error: Callable[[str, zmq.ZMQError], None],
    ) -> None:
        self.name = name
        self.sock = sock
        self.fd: int = sock.getsockopt(zmq.FD)  # type: ignore[assignment]
        self.outbox: deque[Sequence[bytes | memoryview]] = deque()
        self.closed = False
        self._loop = loop
        self._handle = handle
        self._on_error = on_error
        self._scheduled = False
        self._reader_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        try:
            self._loop.add_reader(self.fd, self.on_event)
        except NotImplementedError:
            # A loop without add_reader: let zmq.asyncio watch the socket instead.
            self._reader_task = self._loop.create_task(self._read_with_zmq_asyncio())
        # Messages may already be waiting, and the fd only signals edges.
        self.schedule()

    def schedule(self) -> None:
        """Run :meth:`on_event` soon (after a send, which may swallow the fd's edge)."""
        if not self._scheduled and not self.closed:
            self._scheduled = True
            self._loop.call_soon(self.on_event)

    def on_event(self) -> None:
        self._scheduled = False
        if self.closed:
            return
        sock = self.sock
        handle = self._handle
        getsockopt = sock.getsockopt
        recv = sock.recv
        try:
            # ZMQ_EVENTS before each read: cheaper than a failing recv (an exception per
            # wake-up), and reading it re-arms the edge-triggered fd once we stop.
            for _ in range(_BATCH):
                events: int = getsockopt(_EVENTS)  # type: ignore[assignment]
                if not events & _POLLIN:
                    break
                # Frame.more reads the flag from the frame itself; getsockopt(RCVMORE)
                # would cost a pyzmq enum conversion per frame.
                frame = recv(_NOBLOCK, copy=False)
                frames = [frame.bytes]
                while frame.more:
                    frame = recv(_NOBLOCK, copy=False)
                    frames.append(frame.bytes)
                handle(frames)
            else:
                self.schedule()  # more may be waiting: continue after others had a turn
            if self.outbox and _events(sock) & _POLLOUT:
                self.flush()
        except _Again:
            # POLLIN, yet nothing to read: a REQ socket with REQ_CORRELATE drops a late
            # echo of an abandoned ping only inside recv. Nothing is wrong; re-arm.
            self.schedule()
        except zmq.ZMQError as exc:
            if not self.closed:
                self._on_error(self.name, exc)

    def send(self, frames: Sequence[bytes | memoryview]) -> None:
        if self.outbox or not self._send_now(frames):
            # High-water mark reached (the kernel is not reading): keep it, in order, and
            # send it when the socket becomes writable again.
            self.outbox.append(frames)
        # A send can consume the fd's edge for messages that arrived meanwhile.
        if _events(self.sock) & _POLLIN:
            self.schedule()

    def _send_now(self, frames: Sequence[bytes | memoryview]) -> bool:
        """Send one multipart message without blocking; False if it must wait (HWM)."""
        send = self.sock.send
        last = len(frames) - 1
        try:
            send(frames[0], _MORE if last else _NOBLOCK)
        except _Again:
            return False
        # Once the first part is queued, ZeroMQ accepts the rest of the message.
        for i in range(1, last):
            send(frames[i], _MORE)
        if last:
            send(frames[last], _NOBLOCK)
        return True

    def flush(self) -> None:
        outbox = self.outbox
        while outbox and self._send_now(outbox[0]):
            outbox.popleft()

    async def _read_with_zmq_asyncio(self) -> None:
        asock: zmq.asyncio.Socket = zmq.asyncio.Socket.shadow(self.sock.underlying)
        with contextlib.suppress(asyncio.CancelledError):
            while not self.closed:
                # Writability is watched only while something waits to be sent; a send that
                # fills the outbox meanwhile is flushed at the next incoming message.
                flags = _POLLIN | (_POLLOUT if self.outbox else 0)
                await asock.poll(timeout=None, flags=flags)  # type: ignore[call-arg]
                self.on_event()

    def close(self, linger_ms: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self._reader_task is not None:
            self._reader_task.cancel()
        else:
            if not self._loop.is_closed():  # a closed loop watches nothing any more
                self._loop.remove_reader(self.fd)
        self.outbox.clear()
        self.sock.close(linger=linger_ms)


class ZMQTransport:
    """A client's ZeroMQ connection to one kernel.

    ``session`` defaults to one made from the connection info's key and signature scheme.
    ``identity`` (the routing id of the shell, control and stdin sockets) defaults to a
    fresh random one, so two transports to one kernel never take each other's replies.
    ``context`` defaults to pyzmq's process-wide context (one I/O thread for all).
    """

    __slots__ = (
        "_closed",
        "_context",
        "_hb",
        "_hb_counter",
        "_hb_expected",
        "_hb_waiter",
        "_identity",
        "_info",
        "_linger_ms",
        "_loop",
        "_receiver",
        "_session",
        "_sockets",
    )

    def __init__(
        self,
        info: ConnectionInfo,
        session: Session | None = None,
        *,
        identity: bytes | None = None,
        context: zmq.Context[Any] | None = None,
        linger_ms: int = 1000,
    ) -> None:
        if not info.ports_chosen:
            raise LocalProtocolError(
                f"connection info for kernel {info.kernel_name or '(unnamed)'} has no ports yet "
                f"(shell={info.shell_port}, iopub={info.iopub_port}, stdin={info.stdin_port}, "
                f"control={info.control_port}, hb={info.hb_port}): wait until the kernel has "
                "chosen them"
            )
        self._info = info
        self._session = (
            session
            if session is not None
            else Session(info.key, signature_scheme=info.signature_scheme)
        )
        self._identity = identity if identity is not None else f"kk-{uuid.uuid4().hex}".encode()
        self._context = context
        self._linger_ms = linger_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver: Receiver | None = None
        self._sockets: dict[str, _Socket] = {}
        self._hb: _Socket | None = None
        self._hb_counter = 0
        self._hb_expected = b""
        self._hb_waiter: asyncio.Future[bool] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._sockets else "new"
        ident = self._identity.decode(errors="replace")
        return f"<ZMQTransport {self._info.url('shell')} {ident} {state}>"

    @property
    def session(self) -> Session:
        return self._session

    @property
    def supports_heartbeat(self) -> bool:
        return True

    @property
    def heartbeat_url(self) -> str:
        return self._info.url("hb")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def identity(self) -> bytes:
        """The routing id of this transport's shell, control and stdin sockets."""
        return self._identity

    @property
    def connection_info(self) -> ConnectionInfo:
        return self._info

    async def connect(self, receiver: Receiver) -> None:
        """Create and connect the sockets and start reading.

        Raises:
            ClientClosed: the transport was closed, or is already connected.
            KernelError: ZeroMQ refused an endpoint (a bad ip or transport in the info).
        """
        if self._closed:
            raise ClientClosed("this ZMQTransport is closed; make a new one")
        if self._sockets:
            raise ClientClosed("this ZMQTransport is already connected")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._receiver = receiver
        self._open(loop, receiver)

    def _open(self, loop: asyncio.AbstractEventLoop, receiver: Receiver) -> None:
        """Make the five sockets, connect them to the kernel in ``self._info``, start them."""
        ctx = self._context if self._context is not None else zmq.Context.instance()
        info = self._info
        made: list[zmq.Socket[bytes]] = []
        try:
            for channel in _MESSAGE_CHANNELS:
                sock: zmq.Socket[bytes] = ctx.socket(zmq.SUB if channel == "iopub" else zmq.DEALER)
                made.append(sock)
                sock.setsockopt(zmq.LINGER, self._linger_ms)
                if channel == "iopub":
                    sock.setsockopt(zmq.SUBSCRIBE, b"")
                    # Never drop IOPub on our side: a lost idle would leave a request waiting.
                    sock.setsockopt(zmq.RCVHWM, 0)
                else:
                    sock.setsockopt(zmq.ROUTING_ID, self._identity)
                sock.connect(info.url(channel))
                self._sockets[channel] = _Socket(
                    channel, sock, loop, self._make_handler(channel, receiver), self._on_error
                )
            hb: zmq.Socket[bytes] = ctx.socket(zmq.REQ)
            made.append(hb)
            hb.setsockopt(zmq.LINGER, 0)
            # Relaxed + correlated: a new ping may be sent while an old one is unanswered,
            # and a late echo of the old one is discarded by ZeroMQ itself.
            hb.setsockopt(zmq.REQ_RELAXED, 1)
            hb.setsockopt(zmq.REQ_CORRELATE, 1)
            hb.connect(info.url("hb"))
            self._hb = _Socket("hb", hb, loop, self._on_hb_frames, self._on_error)
        except zmq.ZMQError as exc:
            for s in made:
                s.close(linger=0)
            self._sockets.clear()
            self._hb = None
            raise KernelError(
                f"cannot connect to kernel {info.kernel_name or '(unnamed)'} at "
                f"{info.url('shell')}: {exc}"
            ) from exc
        for channel_socket in self._sockets.values():
            channel_socket.start()
        self._hb.start()

    def reconnect(self, info: ConnectionInfo) -> None:
        """Follow the kernel to ``info``'s endpoints (it was restarted on new ports).

        Nothing happens when the endpoints are the ones in use. Otherwise every socket is
        closed (what was queued for the old kernel is dropped) and made again, with the
        same identity, connected to the new ports; the receiver stays. Call on the loop.

        Raises:
            ClientClosed: the transport is closed.
            KernelError: ``info`` has another key or signature scheme (messages signed for
                one kernel cannot reach the other: make a new client), or no ports yet.
        """
        if self._closed:
            raise ClientClosed("this ZMQTransport is closed")
        old = self._info
        name = info.kernel_name or old.kernel_name or "(unnamed)"
        if info.key != old.key or info.signature_scheme != old.signature_scheme:
            raise KernelError(
                f"kernel {name} was restarted with a new key or signature scheme; this "
                "client cannot follow it: make a new one"
            )
        if not info.ports_chosen:
            raise KernelError(
                f"kernel {name} was restarted but its new ports are not known yet; "
                "make a new client once they are"
            )
        if all(info.url(c) == old.url(c) for c in (*_MESSAGE_CHANNELS, "hb")):
            self._info = info
            return
        self._info = info
        loop, receiver = self._loop, self._receiver
        if loop is None or receiver is None:
            return  # not connected yet: connect() will use the new endpoints
        for sock in self._sockets.values():
            sock.close(0)
        self._sockets.clear()
        if self._hb is not None:
            self._hb.close(0)
            self._hb = None
        if self._hb_waiter is not None:
            _resolve(self._hb_waiter, False)
        self._open(loop, receiver)

    def _make_handler(self, channel: str, receiver: Receiver) -> Callable[[list[bytes]], None]:
        deserialize = self._session.deserialize
        received = receiver.message_received
        rejected = receiver.message_rejected

        def handle(frames: list[bytes]) -> None:
            try:
                _, msg = deserialize(frames)
            except RemoteProtocolError as exc:
                rejected(channel, exc)
                return
            received(channel, msg)

        return handle

    def send(self, channel: str, message: Message) -> None:
        sock = self._sockets.get(channel)
        if sock is None or sock.closed:
            if channel not in _SEND_CHANNELS:
                raise LocalProtocolError(
                    f"cannot send on channel {channel!r}: use shell, control or stdin"
                )
            raise ClientClosed(
                "this ZMQTransport is closed"
                if self._closed
                else "this ZMQTransport is not connected"
            )
        if channel == "iopub":
            raise LocalProtocolError("cannot send on the iopub channel: it is receive-only")
        sock.send(self._session.serialize(message))

    async def ping(self, timeout: float) -> bool:
        hb = self._hb
        loop = self._loop
        if hb is None or hb.closed or loop is None:
            raise ClientClosed("this ZMQTransport is closed or not connected")
        if self._hb_waiter is not None and not self._hb_waiter.done():
            self._hb_waiter.set_result(False)
        self._hb_counter += 1
        payload = b"kk-ping-%d" % self._hb_counter
        waiter: asyncio.Future[bool] = loop.create_future()
        self._hb_waiter = waiter
        self._hb_expected = payload
        try:
            hb.sock.send(payload, _NOBLOCK)
        except _Again:
            return False  # the pipe is full of unanswered pings: the kernel is not there
        if _events(hb.sock) & _POLLIN:
            hb.schedule()
        timer = loop.call_later(timeout, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _on_error(self, channel: str, exc: zmq.ZMQError) -> None:
        log.error(
            "kernelkit: the %s socket to %s failed: %s", channel, self._info.url(channel), exc
        )
        receiver = self._receiver
        self.close()
        if receiver is not None:
            error = KernelError(f"the {channel} channel to {self._info.url(channel)} failed: {exc}")
            error.__cause__ = exc
            receiver.transport_lost(error)

    def _on_hb_frames(self, frames: list[bytes]) -> None:
        waiter = self._hb_waiter
        if waiter is not None and frames and frames[-1] == self._hb_expected:
            _resolve(waiter, True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in self._sockets.values():
            sock.close(self._linger_ms)
        if self._hb is not None:
            self._hb.close(0)
        if self._hb_waiter is not None:
            _resolve(self._hb_waiter, False)

    async def aclose(self) -> None:
        self.close()


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
