"""The ZeroMQ transport: a client's five sockets to one kernel, driven by asyncio.

Sockets: DEALER for shell, control and stdin (one random identity per transport, shared
by all three, so the kernel's stdin ROUTER can reach the socket that sent the execute
request), SUB for IOPub (subscribed to everything), REQ for the heartbeat.

Every socket refuses a message frame over ``max_message_size`` bytes before reading it
(libzmq's ``ZMQ_MAXMSGSIZE``, checked against each frame's header): the limit costs no
memory. libzmq then drops that connection for good, without a word. A DEALER (no send
high-water mark) shows it by no longer being writable; the SUB socket, through a monitor
(a disconnection that is not retried). The channel is then opened again (same identity)
and the receiver is told with :class:`~kernelkit.MessageTooLarge`, so the requests whose
reply was lost fail.

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
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import (
    ClientClosed,
    KernelError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
)
from kernelkit.protocol import Message, Session
from kernelkit.transport import _zmqsocket as zs
from kernelkit.transport._base import Receiver
from kernelkit.transport._zmqlane import DirectLane
from kernelkit.transport._zmqsocket import NOBLOCK, POLLIN, Again, ZMQSocket, events

__all__ = ["ZMQTransport"]

log = logging.getLogger("kernelkit.transport")

# Monitor events. A connection that fails (the kernel went away) is retried at once
# (CONNECT_RETRIED follows DISCONNECTED); one dropped for a protocol error (a frame over
# ZMQ_MAXMSGSIZE) is not, and nothing follows: that silence is how a drop is told apart.
_DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
_RECONNECTING = frozenset((int(zmq.EVENT_CONNECT_RETRIED), int(zmq.EVENT_CONNECTED)))
# A failed ZMTP handshake (CurveZMQ on one side only, or the wrong server key) is
# permanent: the transport fails with a clear error instead of retrying in silence.
_HANDSHAKE_OK = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
# A mechanism mismatch (PROTOCOL) or a refusal (AUTH) fails at once; a failure without
# detail (a wrong server key, or a kernel that closed mid-handshake as it stopped) only
# after this many in a row without a success (libzmq retries every 100 ms or so).
_HANDSHAKE_FATAL = frozenset(
    (int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL), int(zmq.EVENT_HANDSHAKE_FAILED_AUTH))
)
_HANDSHAKE_NO_DETAIL = int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_HANDSHAKE_FAILED = _HANDSHAKE_FATAL | {_HANDSHAKE_NO_DETAIL}
_HANDSHAKE_RETRIES = 5
_MONITORED = (
    _DISCONNECTED
    | int(zmq.EVENT_CONNECT_RETRIED)
    | int(zmq.EVENT_CONNECTED)
    | _HANDSHAKE_OK
    | sum(_HANDSHAKE_FAILED)
)
_DROP_CHECK_DELAY = 0.25  # seconds after DISCONNECTED without a retry: dropped
# Before any handshake succeeded, a DEALER that stops being writable is most likely a
# failed handshake, which the IOPub monitor names; on a busy machine it may take a while.
_UNSHAKEN_DROP_DELAY = 2.0

# The heartbeat only ever carries our own short pings back.
_HB_MAX_MESSAGE_SIZE = 64 * 1024

_MESSAGE_CHANNELS = ("shell", "control", "stdin", "iopub")
_SEND_CHANNELS_ORDER = ("shell", "control", "stdin")
_SEND_CHANNELS = frozenset(_SEND_CHANNELS_ORDER)


class ZMQTransport:
    """A client's ZeroMQ connection to one kernel.

    ``session`` defaults to one made from the connection info's key and signature scheme.
    ``identity`` (the routing id of the shell, control and stdin sockets) defaults to a
    fresh random one, so two transports to one kernel never take each other's replies.
    ``context`` defaults to pyzmq's process-wide context (one I/O thread for all).
    ``max_message_size`` (bytes, default: the session's ``max_message_bytes``, 512 MiB)
    is the largest message frame the sockets accept; a larger one is refused unread, the
    channel is reopened and the receiver gets :class:`~kernelkit.MessageTooLarge`.
    """

    __slots__ = (
        "_closed",
        "_context",
        "_curve",
        "_handshake_failures",
        "_handshook",
        "_hb",
        "_hb_counter",
        "_hb_expected",
        "_hb_waiter",
        "_identity",
        "_info",
        "_lane",
        "_linger_ms",
        "_loop",
        "_max_message_size",
        "_monitors",
        "_receiver",
        "_session",
        "_sockets",
        "_suspects",
        "dropped_connections",
    )

    def __init__(
        self,
        info: ConnectionInfo,
        session: Session | None = None,
        *,
        identity: bytes | None = None,
        context: zmq.Context[Any] | None = None,
        linger_ms: int = 1000,
        max_message_size: int | None = None,
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
        if max_message_size is None:
            max_message_size = self._session.max_message_bytes
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise LocalProtocolError(
                f"max_message_size must be a number of bytes, not {max_message_size!r}"
            )
        if max_message_size <= 0:
            raise LocalProtocolError(f"max_message_size must be positive, not {max_message_size}")
        self._max_message_size = max_message_size
        self._monitors: dict[str, ZMQSocket] = {}
        self._suspects: dict[str, asyncio.TimerHandle] = {}
        #: Connections libzmq dropped for a frame over max_message_size (then reopened).
        self.dropped_connections = 0
        self._identity = identity if identity is not None else f"kk-{uuid.uuid4().hex}".encode()
        self._context = context
        self._linger_ms = linger_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver: Receiver | None = None
        self._sockets: dict[str, ZMQSocket] = {}
        self._lane: DirectLane | None = None
        self._curve = zs.client_keypair(info)
        self._handshook = False  # a ZMTP handshake with the kernel succeeded (on iopub)
        self._handshake_failures = 0  # in a row, on iopub
        self._hb: ZMQSocket | None = None
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
        """The routing id of this transport's shell, control and stdin sockets (a new one
        after a connection was dropped for a frame over ``max_message_size``)."""
        return self._identity

    @property
    def connection_info(self) -> ConnectionInfo:
        return self._info

    @property
    def max_message_size(self) -> int:
        """The largest message frame (bytes) the sockets accept."""
        return self._max_message_size

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
        try:
            for channel in _MESSAGE_CHANNELS:
                self._open_channel(ctx, loop, receiver, channel)
            hb: zmq.Socket[bytes] = ctx.socket(zmq.REQ)
            try:
                hb.setsockopt(zmq.LINGER, 0)
                hb.setsockopt(zmq.MAXMSGSIZE, min(self._max_message_size, _HB_MAX_MESSAGE_SIZE))
                # Relaxed + correlated: a new ping may be sent while an old one is
                # unanswered, and a late echo of the old one is discarded by ZeroMQ itself.
                hb.setsockopt(zmq.REQ_RELAXED, 1)
                hb.setsockopt(zmq.REQ_CORRELATE, 1)
                self._secure(hb)
                hb.connect(info.url("hb"))
            except zmq.ZMQError:
                hb.close(linger=0)
                raise
            self._hb = ZMQSocket("hb", hb, loop, self._on_hb_frames, self._on_error)
        except zmq.ZMQError as exc:
            self._close_channels(0)
            raise KernelError(
                f"cannot connect to kernel {info.kernel_name or '(unnamed)'} at "
                f"{info.url('shell')}: {exc}"
            ) from exc
        for name in _MESSAGE_CHANNELS:
            self._sockets[name].start()
        for monitor in self._monitors.values():
            monitor.start()
        self._hb.start()

    def _open_channel(
        self,
        ctx: zmq.Context[Any],
        loop: asyncio.AbstractEventLoop,
        receiver: Receiver,
        channel: str,
    ) -> None:
        """Make, watch and connect one message channel's socket (not started).

        Raises:
            zmq.ZMQError: ZeroMQ refused an option or the endpoint (nothing is left open).
        """
        iopub = channel == "iopub"
        sock: zmq.Socket[bytes] = ctx.socket(zmq.SUB if iopub else zmq.DEALER)
        monitor: zmq.Socket[bytes] | None = None
        try:
            sock.setsockopt(zmq.LINGER, self._linger_ms)
            sock.setsockopt(zmq.MAXMSGSIZE, self._max_message_size)
            if iopub:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
                # Never drop IOPub on our side: a lost idle would leave a request waiting.
                sock.setsockopt(zmq.RCVHWM, 0)
                # A SUB socket is never writable: a monitor tells when its connection is
                # dropped. pyzmq's get_monitor_socket names the endpoint after the fd,
                # which a socket made after a lingering close can reuse: a unique name.
                address = f"inproc://kernelkit-monitor-{uuid.uuid4().hex}"
                sock.monitor(address, _MONITORED)
                monitor = ctx.socket(zmq.PAIR)
                monitor.connect(address)
            else:
                sock.setsockopt(zmq.ROUTING_ID, self._identity)
                # Unbounded, like the outbox behind it: then the socket stops being
                # writable only when its connection is gone for good.
                sock.setsockopt(zmq.SNDHWM, 0)
            self._secure(sock)
            sock.connect(self._info.url(channel))
        except zmq.ZMQError:
            if monitor is not None:
                monitor.close(linger=0)
            sock.close(linger=0)
            raise
        self._sockets[channel] = ZMQSocket(
            channel,
            sock,
            loop,
            self._make_handler(channel, receiver),
            self._on_error,
            on_lost=None if iopub else self._lost,
        )
        if monitor is not None:
            self._monitors[channel] = ZMQSocket(
                f"{channel} monitor", monitor, loop, self._make_watcher(channel), self._on_error
            )

    def _secure(self, sock: zmq.Socket[bytes]) -> None:
        """Make ``sock`` a CurveZMQ client of the kernel, when the kernel is encrypted."""
        if self._curve is not None:
            public, secret = self._curve
            sock.setsockopt(zmq.CURVE_SERVERKEY, self._info.curve_publickey)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)

    def _close_channels(self, linger_ms: int) -> None:
        for timer in self._suspects.values():
            timer.cancel()
        self._suspects.clear()
        for name, monitor in self._monitors.items():
            if name in self._sockets:
                watched = self._sockets[name]
                with watched.lock:  # it may be lent to a borrower thread
                    watched.sock.disable_monitor()
            monitor.close(0)
        self._monitors.clear()
        for sock in self._sockets.values():
            sock.close(linger_ms)
        self._sockets.clear()
        if self._hb is not None:
            self._hb.close(0)
            self._hb = None

    def _make_watcher(self, channel: str) -> Callable[[list[bytes]], None]:
        """The handler of ``channel``'s monitor events: it notices a dropped connection."""

        def watch(frames: list[bytes]) -> None:
            event = int.from_bytes(frames[0][:2], "little")
            if event == _DISCONNECTED:
                loop = self._loop
                if loop is not None and channel not in self._suspects:
                    self._suspects[channel] = loop.call_later(
                        _DROP_CHECK_DELAY, self._dropped, channel
                    )
            elif event in _RECONNECTING:
                timer = self._suspects.pop(channel, None)
                if timer is not None:
                    timer.cancel()
            elif event == _HANDSHAKE_OK:
                self._handshook = True
                self._handshake_failures = 0
            elif event in _HANDSHAKE_FAILED:
                self._handshake_failures += 1
                if event != _HANDSHAKE_NO_DETAIL or (
                    self._handshake_failures >= _HANDSHAKE_RETRIES
                ):
                    self._handshake_failed(channel)

        return watch

    def _handshake_failed(self, channel: str) -> None:
        info = self._info
        if info.encrypted:
            why = (
                "the kernel's CurveZMQ public key in the connection info is wrong, or the "
                "kernel is not encrypted"
            )
        else:
            why = "the kernel is CurveZMQ-encrypted and the connection info has no curve_publickey"
        error = KernelError(
            f"cannot talk to kernel {info.kernel_name or '(unnamed)'} at {info.url(channel)}: "
            f"the ZeroMQ handshake failed ({why}); use the kernel's own connection file"
        )
        log.error("kernelkit: %s", error)
        receiver = self._receiver
        self.close()
        if receiver is not None:
            receiver.transport_lost(error)

    def _lost(self, sock: ZMQSocket) -> None:
        """A DEALER socket is no longer writable: its connection was dropped for good."""
        loop = self._loop
        if loop is not None and self._sockets.get(sock.name) is sock:
            # Before any handshake, a drop is more likely a failed one: give the monitor
            # time to say so (a frame over the limit can only come after a handshake).
            delay = 0.0 if self._handshook else _UNSHAKEN_DROP_DELAY
            loop.call_later(delay, self._dropped, sock.name, sock)

    def _dropped(self, channel: str, which: ZMQSocket | None = None) -> None:
        """libzmq dropped ``channel``'s connection for good (a frame over the limit):
        open the channel again and tell the receiver."""
        self._suspects.pop(channel, None)
        loop, receiver = self._loop, self._receiver
        old = self._sockets.get(channel)
        if self._closed or loop is None or receiver is None or old is None:
            return
        if which is not None and old is not which:
            return  # reopened already
        self.dropped_connections += 1
        # A DEALER comes back with a new routing id, and its siblings with it (stdin must
        # share shell's): the kernel's ROUTER may still hold the old connection, and it
        # ignores a second peer with the same id. What was pending on them is lost.
        reopen = (channel,) if channel == "iopub" else tuple(_SEND_CHANNELS_ORDER)
        if channel != "iopub":
            self._identity = f"kk-{uuid.uuid4().hex}".encode()
        for name in reopen:
            sock = self._sockets.pop(name)
            monitor = self._monitors.pop(name, None)
            if monitor is not None:
                with sock.lock:  # it may be lent to a borrower thread
                    sock.sock.disable_monitor()
                monitor.close(0)
            sock.close(0)
        ctx = self._context if self._context is not None else zmq.Context.instance()
        limit = self._max_message_size
        name = self._info.kernel_name or "(unnamed)"
        try:
            for again in reopen:
                self._open_channel(ctx, loop, receiver, again)
        except zmq.ZMQError as exc:
            self._on_error(channel, exc)
            return
        for again in reopen:
            self._sockets[again].start()
            if again in self._monitors:
                self._monitors[again].start()
        receiver.message_rejected(
            channel,
            MessageTooLarge(
                f"kernel {name} sent a message on {channel} with a frame over the limit "
                f"of {limit} bytes (max_message_size); it was refused unread and the "
                f"connection was reopened, so what the kernel sent on {channel} meanwhile "
                "is lost (with the replies of every request pending then)",
                limit=limit,
            ),
        )

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
        same_keys = info.curve_publickey == old.curve_publickey
        if same_keys and all(info.url(c) == old.url(c) for c in (*_MESSAGE_CHANNELS, "hb")):
            self._info = info
            return
        if not same_keys:
            self._curve = zs.client_keypair(info)
        self._handshook = False  # a ZMTP handshake with the kernel succeeded (on iopub)
        self._handshake_failures = 0  # in a row, on iopub
        self._info = info
        loop, receiver = self._loop, self._receiver
        if loop is None or receiver is None:
            return  # not connected yet: connect() will use the new endpoints
        self._close_channels(0)
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

    # -- the direct lane (a blocking caller's own I/O: transport/_zmqlane.py) ----------

    def direct_lane(self) -> DirectLane | None:
        """The lane for one thread's own I/O on shell and IOPub; None when not connected."""
        if self._closed or self._loop is None:
            return None
        if self._lane is None:
            self._lane = DirectLane(self, self._loop)
        return self._lane

    def lendable(self, channels: Sequence[str]) -> list[ZMQSocket] | None:
        """The sockets of ``channels``, if each can be lent now (any thread)."""
        found = [self._sockets.get(channel) for channel in channels]
        ok = not self._closed and all(s is not None and s.lendable for s in found)
        return [s for s in found if s is not None] if ok else None

    def lost_while_lent(self, sock: ZMQSocket) -> None:
        """A borrower found ``sock`` unwritable (dropped for good): handle it on the loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self._lost, sock)

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
            hb.sock.send(payload, NOBLOCK)
        except Again:
            return False  # the pipe is full of unanswered pings: the kernel is not there
        if events(hb.sock) & POLLIN:
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
        self._close_channels(self._linger_ms)
        if self._lane is not None:
            self._lane.close()
        if self._hb_waiter is not None:
            _resolve(self._hb_waiter, False)

    async def aclose(self) -> None:
        self.close()


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
