"""One ZeroMQ socket driven by asyncio: its reader, and its queue of messages to send.

The socket's file descriptor is watched with the event loop's ``add_reader``; the
callback drains every message that is ready and hands its frames to a handler, all
synchronously. Loops without ``add_reader`` (Windows' proactor loop) get one
``zmq.asyncio`` reader task per socket instead, which drains the same way.

A socket can be *lent* to one other thread (a blocking caller doing its own I/O, see
:mod:`kernelkit.transport._zmqlane`): every socket operation, on either thread, happens
under the socket's lock (a ZeroMQ socket may move between threads behind a full memory
barrier, never be used by two at once). While lent, the loop's reader steps aside the
first time it wakes (it removes itself: the borrower reads), and a send by the loop that
may have swallowed the fd's edge nudges the borrower instead. The loop takes the socket
back when the lane has been idle a moment, or at once when it needs the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Sequence

import zmq
import zmq.asyncio

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import LocalProtocolError

__all__ = ["FLOOD_AFTER", "NOBLOCK", "POLLIN", "Again", "ZMQSocket", "client_keypair", "events"]

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

#: Messages a reader takes one by one, asking ZMQ_EVENTS before each, before it assumes
#: a flood and receives until a receive fails instead: asking costs about a quarter of a
#: small message's receive, a failing receive (an exception) about three asks. After a
#: failed receive it asks again, which also re-arms the fd.
FLOOD_AFTER = 4


def events(sock: zmq.Socket[bytes]) -> int:
    """The socket's ZMQ_EVENTS (reading them also re-arms its edge-triggered fd)."""
    flags: int = sock.getsockopt(_EVENTS)  # type: ignore[assignment]
    return flags


def client_keypair(info: ConnectionInfo) -> tuple[bytes, bytes] | None:
    """This client's own CurveZMQ keypair (fresh, never written anywhere), if encrypted.

    ipykernel accepts any client key (it runs no ZAP handler): what authenticates the
    client is still the message signature; what Curve adds is that nobody on the path can
    read or alter a message, and that the client talks only to the holder of the kernel's
    secret key.
    """
    if not info.encrypted:
        return None
    if not zmq.has("curve"):
        raise LocalProtocolError(
            f"kernel {info.kernel_name or '(unnamed)'} is CurveZMQ-encrypted but this pyzmq's "
            "libzmq has no CURVE support; install a pyzmq wheel (it bundles libsodium)"
        )
    return zmq.curve_keypair()


class ZMQSocket:
    """One ZeroMQ socket, its reader and its queue of messages waiting to be sent."""

    __slots__ = (
        "_handle",
        "_loop",
        "_on_error",
        "_on_lost",
        "_parked",
        "_reader_task",
        "_scheduled",
        "catch_up",
        "closed",
        "fd",
        "lent",
        "lock",
        "name",
        "nudge",
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
        #: Held around every operation on ``sock``, by the loop and by a borrower.
        self.lock = threading.Lock()
        #: Lent to a borrower thread now (see the module docstring).
        self.lent = False
        #: Wakes the borrower (set while lent).
        self.nudge: Callable[[], None] | None = None
        #: Run on the loop before it reads or sends again after a loan: hands over, in
        #: order, what the borrower read (set by the lane).
        self.catch_up: Callable[[], None] | None = None
        self._parked = False  # the loop's reader stepped aside for a borrower

    @property
    def lendable(self) -> bool:
        """The socket is watched with ``add_reader`` (not a zmq.asyncio task) and open."""
        return self._reader_task is None and not self.closed

    def lend(self, nudge: Callable[[], None]) -> None:
        """Lend the socket to the calling thread (any thread) until :meth:`give_back`:
        meanwhile the loop reads nothing from it, and calls ``nudge`` when the borrower
        may have to look again."""
        with self.lock:
            self.lent = True
            self.nudge = nudge

    def give_back(self) -> None:
        """End the loan (the borrower's thread). The loop's reader stays parked until
        :meth:`unpark` (or the loop's next use of the socket), so a borrower that comes
        back soon wakes nobody."""
        with self.lock:
            self.lent = False
            self.nudge = None

    def revoke(self) -> None:
        """End the loan from the loop's side (its borrower stopped looking) and watch
        the fd again (on the loop)."""
        with self.lock:
            self.lent = False
            self.nudge = None
        self.unpark()

    def unpark(self) -> None:
        """Watch the fd again and look at once, unless lent (on the loop): the borrower
        may have taken the fd's edge of what it left unread."""
        with self.lock:
            if self.lent or self.closed:
                return
            if self._parked:
                self._parked = False
                self._loop.add_reader(self.fd, self.on_event)
        self.schedule()

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
        lock = self.lock
        if self.catch_up is not None:
            self.catch_up()  # what a borrower read comes first
        if self._parked and not self.lent:  # back from a loan
            self.unpark()
            return
        try:
            # ZMQ_EVENTS before each read (in a flood, a failing recv at the end instead:
            # see FLOOD_AFTER); the last read of it re-arms the edge-triggered fd.
            ready = 0
            asked = 0  # messages read after asking ZMQ_EVENTS (see FLOOD_AFTER)
            for _ in range(_BATCH):
                with lock:
                    if self.lent:
                        self._park()
                        return
                    if asked < FLOOD_AFTER:
                        ready = getsockopt(_EVENTS)  # type: ignore[assignment]
                        if not ready & _POLLIN:
                            break
                        # Frame.more reads the flag from the frame itself;
                        # getsockopt(RCVMORE) would cost a pyzmq enum conversion per frame.
                        frame = recv(_NOBLOCK, copy=False)
                        asked += 1
                    else:
                        try:
                            frame = recv(_NOBLOCK, copy=False)
                        except _Again:
                            asked = 0  # ask again: that also re-arms the fd
                            continue
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
            if self.outbox:
                with lock:
                    if events(sock) & _POLLOUT:
                        self.flush()
        except _Again:
            # POLLIN, yet nothing to read: a REQ socket with REQ_CORRELATE drops a late
            # echo of an abandoned ping only inside recv. Nothing is wrong; re-arm.
            self.schedule()
        except zmq.ZMQError as exc:
            if not self.closed:
                self._on_error(self.name, exc)

    def _park(self) -> None:
        """Stop watching the fd while the socket is lent (under the lock, on the loop)."""
        if not self._parked and self._reader_task is None:
            self._parked = True
            self._loop.remove_reader(self.fd)

    def send(self, frames: Sequence[bytes | memoryview]) -> None:
        if self.catch_up is not None:
            self.catch_up()  # what a borrower read comes first
        if self._parked and not self.lent:  # back from a loan: read the reply
            self.unpark()
        with self.lock:
            if self.outbox or not self.send_now(frames):
                # High-water mark reached (the kernel is not reading): keep it, in order,
                # and send it when the socket becomes writable again.
                self.outbox.append(frames)
            # A send can consume the fd's edge for messages that arrived meanwhile.
            if not events(self.sock) & _POLLIN:
                return
            nudge = self.nudge if self.lent else None
        if nudge is not None:
            nudge()  # the borrower reads them
        else:
            self.schedule()

    def send_now(self, frames: Sequence[bytes | memoryview]) -> bool:
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
        while outbox and self.send_now(outbox[0]):
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
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if self._reader_task is not None:
                self._reader_task.cancel()
            elif not self._parked and not self._loop.is_closed():
                self._loop.remove_reader(self.fd)  # (a closed loop watches nothing)
            nudge = self.nudge if self.lent else None
            self.outbox.clear()
            self.sock.close(linger=linger_ms)
        if nudge is not None:
            nudge()  # the borrower finds it closed
