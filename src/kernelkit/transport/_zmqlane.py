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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import zmq

from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import Message, Session
from kernelkit.transport._zmqsocket import NOBLOCK, POLLIN, ZMQSocket

if TYPE_CHECKING:
    from kernelkit.transport._zmq import ZMQTransport

__all__ = ["DirectLane", "Lease", "Received"]

#: What a lease reads: the channel, and the verified message or why it was refused.
Received = tuple[str, Message | RemoteProtocolError]

_POLLOUT = int(zmq.POLLOUT)
_EVENTS = int(zmq.EVENTS)
_BATCH = 512  # messages read per socket per look, as the loop's reader does
_WAKE = select.POLLIN


class DirectLane:
    """Lets one thread at a time do its own I/O on ``transport``'s sockets."""

    __slots__ = ("_busy", "_loop", "_rfd", "_wfd", "transport")

    def __init__(self, transport: ZMQTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._busy = threading.Lock()
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
            loans = [(sock, sock.lend(self.nudge)) for sock in sockets]
        except BaseException:
            self._busy.release()
            raise
        return Lease(self, self.transport.session, loans)

    def _end(self, lease: Lease, then: Callable[[], None] | None) -> None:
        """Give the sockets back: ``then()`` and the take-backs run on the loop, in order."""
        try:
            self._loop.call_soon_threadsafe(_give_back, lease.loans, then)
        except RuntimeError:
            pass  # the loop is closed: nothing reads the sockets any more
        finally:
            self._busy.release()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._rfd)
        if self._wfd != self._rfd:
            with contextlib.suppress(OSError):
                os.close(self._wfd)


def _give_back(loans: list[tuple[ZMQSocket, int]], then: Callable[[], None] | None) -> None:
    try:
        if then is not None:
            then()
    finally:
        for sock, loan in loans:
            sock.take_back(loan)


class Lease:
    """The sockets one thread borrowed: send, wait, read; :meth:`end` gives them back."""

    __slots__ = ("_lane", "_lost", "_poller", "_session", "loans")

    def __init__(
        self, lane: DirectLane, session: Session, loans: list[tuple[ZMQSocket, int]]
    ) -> None:
        self._lane = lane
        self._session = session
        self.loans = loans
        self._lost = False
        poller = select.poll()
        poller.register(lane._rfd, _WAKE)
        for sock, _ in loans:
            poller.register(sock.fd, select.POLLIN)
        self._poller = poller

    def send(self, channel: str, message: Message) -> bool:
        """Send ``message`` on ``channel`` (a lent socket) now; False if it cannot go at
        once (closed, or messages queued before it): then nothing was sent."""
        frames = self._session.serialize(message)
        for sock, _ in self.loans:
            if sock.name == channel:
                with sock.lock:
                    if sock.closed or sock.outbox:
                        return False
                    return sock.send_now(frames)  # under its lock
        return False

    def read(self) -> list[Received]:
        """Everything waiting on the lent sockets now, verified, in arrival order per
        socket (without waiting)."""
        got: list[tuple[str, list[bytes]]] = []
        for sock, _ in self.loans:
            self._read_one(sock, got)
        deserialize = self._session.deserialize
        out: list[Received] = []
        for channel, frames in got:
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
        for fd, _ in self._poller.poll(ms):
            if fd == self._lane._rfd:
                self._lane._drain_wakes()

    def hand_over(self, then: Callable[[], None]) -> None:
        """Run ``then`` on the loop soon (to hand over what was read so far, in order)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._lane._loop.call_soon_threadsafe(then)

    def end(self, then: Callable[[], None] | None = None) -> None:
        """Give the sockets back to the loop, after running ``then`` there (to hand
        over what was read, in order). The lane is free for another thread at once."""
        self._lane._end(self, then)
