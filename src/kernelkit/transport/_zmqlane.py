"""A blocking caller's own I/O on a ZeroMQ transport's sockets: the direct lane.

A blocking client hands each request to its event-loop thread and waits for the answer:
two thread wake-ups per request that a plain pyzmq client does not pay (on an idle
machine, the larger part of a quick request's cost). With a :class:`DirectLane`, one
calling thread at a time borrows the shell (and, when it waits for outputs, the IOPub)
socket from the loop instead (:meth:`ZMQSocket.lend`): it sends its request, waits on
the sockets' file descriptors itself, reads and verifies what arrives, and hands every
message it read back to the loop, in order, when it is done. The loop keeps the
heartbeat, the control and stdin channels, and everything else it does.

Nothing is lost while a socket is lent: the loop reads none of it; a send by the loop
that may have swallowed the fd's edge wakes the borrower (an eventfd); closing the
socket (the channel is reopened, the transport closed) wakes it too. Only one thread
borrows at a time; another one uses the loop as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import zmq

from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import Message, Session
from kernelkit.transport._zmqsocket import NOBLOCK, POLLIN, ZMQSocket

if TYPE_CHECKING:
    from kernelkit.transport._zmq import ZMQTransport

__all__ = ["DirectLane", "Lease", "Received"]

#: What a lease reads: the channel, and the verified message, or why it was refused, or
#: (IOPub not looked at now) the frames as they came, verified later by whoever takes them.
Received = tuple[str, Message | RemoteProtocolError | list[bytes]]

_POLLOUT = int(zmq.POLLOUT)
_EVENTS = int(zmq.EVENTS)
_BATCH = 512  # messages read per socket per look, as the loop's reader does
_WAKE = select.POLLIN


#: Seconds the lane must stay unused before the loop takes its sockets back.
IDLE = 0.02
#: Messages read by borrowers and not yet handed to the loop, past which they go at once.
BACKLOG = 256


class DirectLane:
    """Lets one thread at a time do its own I/O on ``transport``'s sockets.

    What a borrower read is handed to the loop later, in order (:meth:`flush`): when the
    loop next reads or sends on a socket it lent, when the blocking face hands the loop
    other work, or once the lane has been idle for :data:`IDLE` seconds (a timer on the
    loop, running only while the lane is in use). A borrower that comes back within that
    time wakes nobody: its requests cost the loop thread nothing.
    """

    __slots__ = (
        "_backlog",
        "_busy",
        "_last_end",
        "_lent",
        "_loop",
        "_rfd",
        "_state",
        "_ticking",
        "_wfd",
        "pending",
        "transport",
    )

    def __init__(self, transport: ZMQTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._busy = threading.Lock()  # held by the borrowing thread
        self._state = threading.Lock()  # guards _ticking against a racing borrower
        self._ticking = False
        self._last_end = 0.0
        self._backlog = 0
        self._lent: dict[str, ZMQSocket] = {}  # lent since the loop last took them back
        #: What borrowers read and the loop has yet to take in (callables, in order).
        self.pending: deque[Callable[[], None]] = deque()
        if hasattr(os, "eventfd"):
            self._rfd = self._wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - platforms without eventfd
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)

    def nudge(self) -> None:
        """Wake the borrower (any thread)."""
        with contextlib.suppress(OSError):  # full (it will wake anyway) or closed
            os.write(self._wfd, b"\x01\0\0\0\0\0\0\0")

    def _drain_wakes(self) -> None:
        with contextlib.suppress(OSError):
            os.read(self._rfd, 8 if self._rfd == self._wfd else 4096)

    def open(self, channels: Sequence[str]) -> Lease | None:
        """Borrow ``channels``' sockets; None when another thread has them, or a socket
        cannot be lent (closed, or watched by a zmq.asyncio task)."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            sockets = self.transport.lendable(channels)
            if sockets is None:
                self._busy.release()
                return None
            self._drain_wakes()
            for sock in sockets:
                sock.catch_up = self.flush
                sock.lend(self.nudge)
            with self._state:
                for sock in sockets:
                    self._lent[sock.name] = sock
                start, self._ticking = not self._ticking, True
            if start:
                self._loop.call_soon_threadsafe(self._tick)
        except BaseException:
            self._busy.release()
            raise
        return Lease(self, self.transport.session, sockets)

    def _end(self, lease: Lease, then: Callable[[], None] | None, count: int, urgent: bool) -> None:
        if then is not None:
            self.pending.append(then)
            self._backlog += count
            if urgent or self._backlog > BACKLOG:  # awaited, or a tight loop: now
                self._backlog = 0
                self.wake_loop()
        for sock in lease.sockets:
            sock.give_back()
        self._last_end = time.monotonic()
        self._busy.release()

    @property
    def lent_out(self) -> bool:
        """Something is lent, parked or waiting to be handed over (any thread)."""
        return bool(self._lent or self.pending)

    def flush(self) -> None:
        """Take in what borrowers read, in order (on the loop)."""
        pending = self.pending
        while pending:
            pending.popleft()()

    def wake_loop(self) -> None:
        """Have the loop take in what borrowers read, soon (any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self.flush)

    def _tick(self) -> None:
        """While in use: once idle for IDLE seconds, take everything back (on the loop)."""
        with self._state:
            if self._busy.locked() or time.monotonic() - self._last_end < IDLE:
                self._loop.call_later(IDLE, self._tick)
                return
            self._ticking = False
        self.take_back()

    def take_back(self) -> None:
        """Take in what borrowers read, and watch the sockets again unless one is lent
        now (on the loop)."""
        with self._state:
            lent = list(self._lent.values())
            self._lent.clear()
        self.flush()
        for sock in lent:
            if sock.lent:  # lent again since: its lease's tick sees to it
                with self._state:
                    self._lent[sock.name] = sock
            else:
                sock.unpark()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._rfd)
        if self._wfd != self._rfd:
            with contextlib.suppress(OSError):
                os.close(self._wfd)


class Lease:
    """The sockets one thread borrowed: send, wait, read; :meth:`end` gives them back."""

    __slots__ = ("_due", "_lane", "_lost", "_poller", "_session", "sockets")

    def __init__(self, lane: DirectLane, session: Session, sockets: list[ZMQSocket]) -> None:
        self._lane = lane
        self._session = session
        self.sockets = sockets
        self._lost = False
        # The sockets to look at on the next read: all at first (the loop left messages),
        # then those whose fd fired (the others' state cannot have changed), or all after
        # a nudge (the loop used one).
        self._due = sockets
        poller = select.poll()
        poller.register(lane._rfd, _WAKE)
        for sock in sockets:
            poller.register(sock.fd, select.POLLIN)
        self._poller = poller

    def send(self, channel: str, message: Message) -> bool:
        """Send ``message`` on ``channel`` (a lent socket) now; False if it cannot go at
        once (closed, or messages queued before it): then nothing was sent."""
        frames = self._session.serialize(message)
        for sock in self.sockets:
            if sock.name == channel:
                with sock.lock:
                    if sock.closed or sock.outbox:
                        return False
                    return sock.send_now(frames)  # under its lock
        return False

    def read(self, iopub: bool = True) -> list[Received]:
        """Everything waiting on the lent sockets now, verified, in arrival order per
        socket (without waiting); IOPub's left as frames unless ``iopub``."""
        got: list[tuple[str, list[bytes]]] = []
        for sock in self._due:
            self._read_one(sock, got)
        self._due = []
        deserialize = self._session.deserialize
        out: list[Received] = []
        for channel, frames in got:
            if channel == "iopub" and not iopub:
                out.append((channel, frames))
                continue
            try:
                out.append((channel, deserialize(frames)[1]))
            except RemoteProtocolError as exc:
                out.append((channel, exc))
        return out

    def _read_one(self, sock: ZMQSocket, got: list[tuple[str, list[bytes]]]) -> None:
        name = sock.name
        with sock.lock:
            if sock.closed:
                return
            zsock = sock.sock
            getsockopt, recv = zsock.getsockopt, zsock.recv
            ready = 0
            for _ in range(_BATCH):
                ready = getsockopt(_EVENTS)  # type: ignore[assignment]
                if not ready & POLLIN:
                    break
                frame = recv(NOBLOCK, copy=False)
                frames = [frame.bytes]
                while frame.more:
                    frame = recv(NOBLOCK, copy=False)
                    frames.append(frame.bytes)
                got.append((name, frames))
            else:
                self._lane.nudge()  # more waiting: look again without sleeping
                return
            # From the last ZMQ_EVENTS read, not a new one: a second read could take a
            # new message's edge from the fd without our seeing its POLLIN.
            writable = bool(ready & _POLLOUT) or name == "iopub"
        if not writable and not self._lost:
            # The connection was dropped for good (a frame over the size limit): let the
            # loop's transport reopen the channel and fail what was pending.
            self._lost = True
            self._lane.transport.lost_while_lent(sock)

    def wait(self, timeout: float | None) -> None:
        """Sleep until a lent socket may have something, the lane is nudged, or
        ``timeout`` seconds pass (None: no limit)."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        fired = self._poller.poll(ms)
        lane = self._lane
        if any(fd == lane._rfd for fd, _ in fired):
            lane._drain_wakes()
            self._due = self.sockets
        else:
            ready = {fd for fd, _ in fired}
            self._due = [sock for sock in self.sockets if sock.fd in ready]

    def hand_over(self, then: Callable[[], None]) -> None:
        """Have the loop run ``then`` soon, after what was handed over before (others'
        messages that someone may be waiting for)."""
        self._lane.pending.append(then)
        self._lane.wake_loop()

    def end(
        self, then: Callable[[], None] | None = None, count: int = 0, *, urgent: bool = False
    ) -> None:
        """Give the sockets back; the loop runs ``then`` (which hands over ``count``
        messages) later, in order (see :class:`DirectLane`), or soon if ``urgent``. The
        lane is free for another thread at once."""
        self._lane._end(self, then, count, urgent)
