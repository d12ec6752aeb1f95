"""One ZeroMQ socket driven by asyncio: its reader, and its queue of messages to send.

The socket's file descriptor is watched with the event loop's ``add_reader``; the
callback drains every message that is ready and hands its frames to a handler, all
synchronously. Loops without ``add_reader`` (Windows' proactor loop) get one
``zmq.asyncio`` reader task per socket instead, which drains the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence

import zmq
import zmq.asyncio

__all__ = ["NOBLOCK", "POLLIN", "Again", "ZMQSocket", "events"]

# Plain ints, not pyzmq's enum members: every `&` or `|` on an enum builds a new member,
# which costs more than the socket call it guards.
POLLIN = _POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
NOBLOCK = _NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
Again = _Again = zmq.Again

# At most this many messages are read per wake-up before yielding to the loop, so an
# IOPub flood cannot starve the other sockets and the caller's tasks.
_BATCH = 512


def events(sock: zmq.Socket[bytes]) -> int:
    """The socket's ZMQ_EVENTS (reading them also re-arms its edge-triggered fd)."""
    flags: int = sock.getsockopt(_EVENTS)  # type: ignore[assignment]
    return flags


class ZMQSocket:
    """One ZeroMQ socket, its reader and its queue of messages waiting to be sent."""

    __slots__ = (
        "_handle",
        "_loop",
        "_on_error",
        "_on_lost",
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
        *,
        on_lost: Callable[[ZMQSocket], None] | None = None,
    ) -> None:
        self.name = name
        self.sock = sock
        self.fd: int = sock.getsockopt(zmq.FD)  # type: ignore[assignment]
        self.outbox: deque[Sequence[bytes | memoryview]] = deque()
        self.closed = False
        self._loop = loop
        self._handle = handle
        self._on_error = on_error
        self._on_lost = on_lost
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
                ready: int = getsockopt(_EVENTS)  # type: ignore[assignment]
                if not ready & _POLLIN:
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
                ready = _POLLOUT  # not looked at: decided on the next turn
            if self._on_lost is not None and not ready & _POLLOUT:
                # With no send high-water mark, only a socket that lost its connection
                # for good (libzmq drops it after a frame over MAXMSGSIZE, and never
                # reconnects) stops being writable.
                if not self.closed:
                    self._on_lost(self)
                return
            if self.outbox and events(sock) & _POLLOUT:
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
        if events(self.sock) & _POLLIN:
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
