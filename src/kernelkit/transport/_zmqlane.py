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

A borrower that stops looking at its sockets while someone else needs them (it runs a
caller's hook while another thread waits for a reply) has its loan *revoked* after
:data:`IDLE` seconds; one that is about to wait on the loop itself (a request made from
a hook) gives it up at once (:meth:`DirectLane.step_aside`). The loop then takes in
what the borrower read, reads the sockets again itself, and hands the borrower what is
its own through its slot (see :mod:`kernelkit.client._direct`). A borrower that nobody
else waits on keeps its sockets however long it looks away: a flood of output is read,
verified and shown in the one calling thread, as a plain pyzmq client does. What a lease
has read is kept on the lease, so neither a revocation nor an exception in the borrower
loses it.
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
from functools import partial
from typing import TYPE_CHECKING

import zmq

from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import Message, Session
from kernelkit.transport._zmqsocket import FLOOD_AFTER, NOBLOCK, POLLIN, Again, ZMQSocket

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


#: Seconds the lane must stay unused (or a borrower not looking, while its sockets are
#: needed) before the loop takes its sockets back.
IDLE = 0.02
#: Messages read by borrowers and not yet handed to the loop, past which they go at once.
BACKLOG = 256

#: Takes in what a lease read (on the loop thread), given by the lease's opener: the
#: messages, and how many at the end of them the borrower has not looked at yet (they
#: may be its own, and go through its slot).
Deliver = Callable[[list[Received], int], None]


class DirectLane:
    """Lets one thread at a time do its own I/O on ``transport``'s sockets.

    What a borrower read is handed to the loop later, in order (:meth:`flush`): when the
    loop next reads or sends on a socket it lent, when the blocking face hands the loop
    other work or reads state, or once the lane has been idle for :data:`IDLE` seconds (a
    timer on the loop, running only while the lane is in use). A borrower that comes
    back within that time wakes nobody: its requests cost the loop thread nothing.
    """

    __slots__ = (
        "_backlog",
        "_busy",
        "_closed",
        "_flushing",
        "_last_end",
        "_lease",
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
        self._state = threading.Lock()  # guards _ticking, _lent and _lease
        self._ticking = False
        self._closed = False
        self._flushing = False
        self._last_end = 0.0
        self._backlog = 0
        self._lease: Lease | None = None  # the one open now
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

    def open(
        self, channels: Sequence[str], deliver: Deliver, needed: Callable[[], bool]
    ) -> Lease | None:
        """Borrow ``channels``' sockets; None when another thread has them, or a socket
        cannot be lent (closed, or watched by a zmq.asyncio task). ``deliver`` takes in
        what the lease read, on the loop; ``needed`` (asked on the loop) says whether
        anyone else waits for what arrives on them now."""
        if self._closed or not self._busy.acquire(blocking=False):
            return None
        lent: list[ZMQSocket] = []
        try:
            sockets = self.transport.lendable(channels)
            if sockets is None:
                self._busy.release()
                return None
            self._drain_wakes()
            for sock in sockets:
                sock.catch_up = self.flush
                sock.lend(self.nudge)
                lent.append(sock)
            lease = Lease(self, self.transport.session, sockets, deliver, needed)
            with self._state:
                for sock in sockets:
                    self._lent[sock.name] = sock
                self._lease = lease
                start, self._ticking = not self._ticking, True
            if start:
                self._loop.call_soon_threadsafe(self._tick)
        except BaseException:
            for sock in lent:
                sock.give_back()
            with self._state:
                self._lease = None
            self._busy.release()
            raise
        return lease

    def _end(self, lease: Lease, urgent: bool) -> None:
        try:
            taken, unseen = lease.take()
            if taken:
                self.pending.append(partial(lease.deliver, taken, unseen))
                self._backlog += len(taken)
                if urgent or self._backlog > BACKLOG:  # awaited, or a tight loop: now
                    self._backlog = 0
                    self.wake_loop()
        finally:
            for sock in lease.sockets:
                sock.give_back()
            with self._state:
                self._lease = None
            self._last_end = time.monotonic()
            self._busy.release()
            if self._closed:
                self._close_fds()

    @property
    def lent_out(self) -> bool:
        """Something is lent, parked or waiting to be handed over (any thread)."""
        return bool(self._lent or self.pending)

    def flush(self) -> None:
        """Take in what borrowers read, in order (on the loop; not again from inside)."""
        if self._flushing:
            return  # a handler reading state or sending: the outer flush goes on in order
        self._flushing = True
        try:
            pending = self.pending
            while pending:
                pending.popleft()()
        finally:
            self._flushing = False

    def wake_loop(self) -> None:
        """Have the loop take in what borrowers read, soon (any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self.flush)

    def step_aside(self) -> None:
        """The calling thread is about to wait on the loop (any thread): if it holds the
        open lease (a request made from one of its hooks), have the loop take the
        sockets back now, before it sends that request; else nothing."""
        lease = self._lease
        if lease is not None and lease.thread == threading.get_ident():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self._revoke, lease)

    def _tick(self) -> None:
        """While in use (on the loop): revoke a loan its borrower stopped looking at
        while the sockets are needed; once idle for IDLE seconds, take everything back."""
        now = time.monotonic()
        with self._state:
            lease = self._lease
            stalled = lease is not None and lease.stalled(now) and lease.needed()
            if self._busy.locked() or now - self._last_end < IDLE:
                self._loop.call_later(IDLE, self._tick)
                if not stalled:
                    return
            else:
                self._ticking = False
        if stalled and lease is not None:
            self._revoke(lease)
        else:
            self.take_back()

    def _revoke(self, lease: Lease) -> None:
        """Take the sockets back from a borrower that is not looking at them, or is
        about to wait on the loop (on the loop): what it read first, then the loop reads
        on; its own messages reach it through its slot."""
        with self._state:
            if lease.revoked or self._lease is not lease:
                return  # ended meanwhile: its sockets are back, or lent to another lease
        self.flush()
        taken, unseen = lease.revoke()
        if taken:
            lease.deliver(taken, unseen)
        for sock in lease.sockets:
            sock.revoke()
        self.nudge()

    def take_back(self) -> None:
        """Take in everything borrowers read (also what the open lease has read so far),
        and watch the sockets again unless one is lent now (on the loop)."""
        self.flush()
        with self._state:
            lease = self._lease
            lent = list(self._lent.values())
            self._lent.clear()
        if lease is not None:
            taken, unseen = lease.take()
            if taken:
                lease.deliver(taken, unseen)
        for sock in lent:
            if sock.lent:  # lent again since: its lease's tick sees to it
                with self._state:
                    self._lent[sock.name] = sock
            else:
                sock.unpark()

    def close(self) -> None:
        """Close the lane's wake-up fd, once no borrower can use it any more."""
        self._closed = True
        if self._busy.acquire(blocking=False):
            try:
                self._close_fds()
            finally:
                self._busy.release()
        else:
            self.nudge()  # the borrower ends its lease, which closes them

    def _close_fds(self) -> None:
        rfd, wfd = self._rfd, self._wfd
        self._rfd = self._wfd = -1
        for fd in {rfd, wfd} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)


class Lease:
    """The sockets one thread borrowed: send, wait, read; :meth:`end` gives them back.

    What it read is kept here (``_raw``: frames not yet looked at; ``_read``: looked at)
    until it is handed over, under ``_lock``, which the loop takes too when it takes
    them (a revocation, or a state read).
    """

    __slots__ = (
        "_due",
        "_fds_dropped",
        "_lane",
        "_lock",
        "_lost",
        "_poller",
        "_raw",
        "_read",
        "_session",
        "active",
        "deliver",
        "needed",
        "revoked",
        "sockets",
        "thread",
        "waiting",
    )

    def __init__(
        self,
        lane: DirectLane,
        session: Session,
        sockets: list[ZMQSocket],
        deliver: Deliver,
        needed: Callable[[], bool],
    ) -> None:
        self._lane = lane
        self._session = session
        self.sockets = sockets
        self.deliver = deliver
        self.needed = needed
        self.thread = threading.get_ident()  # the borrower
        self._lock = threading.Lock()
        self._raw: deque[tuple[str, list[bytes]]] = deque()
        self._read: list[Received] = []
        self._lost = False
        self._fds_dropped = False
        self.revoked = False
        self.waiting = False  # in poll: looking at the sockets
        self.active = time.monotonic()  # when the borrower last looked
        # The sockets to look at on the next read: all at first (the loop left messages),
        # then those whose fd fired (the others' state cannot have changed), or all after
        # a nudge (the loop used one).
        self._due = sockets
        self._poller = self._make_poller()

    def _make_poller(self) -> select.poll:
        poller = select.poll()
        poller.register(self._lane._rfd, _WAKE)
        if not self.revoked:
            for sock in self.sockets:
                poller.register(sock.fd, select.POLLIN)
        return poller

    def stalled(self, now: float) -> bool:
        """The borrower has not looked at its sockets for IDLE seconds (a hook runs)."""
        return not self.revoked and not self.waiting and now - self.active >= IDLE

    def revoke(self) -> tuple[list[Received], int]:
        """Mark the loan revoked and take what was read (on the loop)."""
        with self._lock:
            self.revoked = True
        return self.take()

    def take(self) -> tuple[list[Received], int]:
        """What was read and not yet handed over, in order, and how many at its end the
        borrower has not looked at (either thread)."""
        with self._lock:
            taken: list[Received] = self._read
            unseen = len(self._raw)
            if unseen:
                taken.extend(self._raw)
                self._raw = deque()
            self._read = []
        return taken, unseen

    def held(self) -> int:
        """How many messages read are kept here, not handed over yet (either thread)."""
        return len(self._read) + len(self._raw)

    def send(self, channel: str, message: Message) -> bool:
        """Send ``message`` on ``channel`` (a lent socket) now; False if it cannot go at
        once (closed, revoked, or messages queued before it): then nothing was sent."""
        frames = self._session.serialize(message)
        for sock in self.sockets:
            if sock.name == channel:
                with sock.lock:
                    if sock.closed or sock.outbox or not sock.lent:
                        return False
                    return sock.send_now(frames)  # under its lock
        return False

    def read(self, iopub: bool = True, own: str | None = None) -> list[Received]:
        """What arrived on the lent sockets since the last read, verified, in arrival
        order per socket (without waiting); IOPub's left as frames unless ``iopub``.

        Everything read is also kept for :meth:`take`, except the IOPub outputs (not
        statuses) of request ``own``: the borrower takes those for itself, and nobody
        else needs them (its caller says). From the first message refused on, this
        read keeps everything (what the core counts is the refusals in a row).
        """
        self.active = time.monotonic()
        deserialize = self._session.deserialize
        out: list[Received] = []
        # Under the lock throughout: the loop may take what is left (a revocation), and
        # must never verify a message a second time (the replay check would refuse it).
        # A message leaves _raw only once verified: an interrupt leaves it unread.
        with self._lock:
            if self.revoked:
                return out
            raw = self._raw
            for sock in self._due:
                self._read_one(sock, raw)
            self._due = []
            kept = self._read
            popleft, keep, add = raw.popleft, kept.append, out.append
            while raw:
                channel, frames = raw[0]
                item: Message | RemoteProtocolError | list[bytes]
                if channel != "iopub":
                    try:
                        item = deserialize(frames)[1]
                    except RemoteProtocolError as exc:
                        item = exc
                        own = None
                elif not iopub:
                    item = frames
                else:
                    try:
                        item = deserialize(frames)[1]
                    except RemoteProtocolError as exc:
                        item = exc
                        own = None
                    else:
                        if own is not None:
                            parent = item.parent_header
                            if (
                                parent is not None
                                and parent.msg_id == own
                                and item.header.msg_type != "status"
                            ):
                                popleft()
                                add(("iopub", item))
                                continue
                popleft()
                entry = (channel, item)
                keep(entry)
                add(entry)
        return out

    def _read_one(self, sock: ZMQSocket, got: deque[tuple[str, list[bytes]]]) -> None:
        name = sock.name
        with sock.lock:
            if sock.closed or not sock.lent:
                return
            zsock = sock.sock
            getsockopt, recv = zsock.getsockopt, zsock.recv
            ready = 0
            asked = 0  # messages read after asking ZMQ_EVENTS (see FLOOD_AFTER)
            for _ in range(_BATCH):
                if asked < FLOOD_AFTER:
                    ready = getsockopt(_EVENTS)  # type: ignore[assignment]
                    if not ready & POLLIN:
                        break
                    frame = recv(NOBLOCK, copy=False)
                    asked += 1
                else:
                    try:
                        frame = recv(NOBLOCK, copy=False)
                    except Again:
                        asked = 0  # ask again: that also re-arms the fd
                        continue
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
        self.waiting = True
        try:
            fired = self._poller.poll(ms)
        finally:
            self.waiting = False
            self.active = time.monotonic()
        lane = self._lane
        if any(fd == lane._rfd or event & select.POLLNVAL for fd, event in fired):
            lane._drain_wakes()
            self._due = self.sockets
            if not self._fds_dropped and (
                self.revoked or any(sock.closed for sock in self.sockets)
            ):
                self._fds_dropped = True
                self._poller = self._make_poller()  # only the wake-up fd is of use now
        else:
            ready = {fd for fd, _ in fired}
            self._due = [sock for sock in self.sockets if sock.fd in ready]

    def hand_over(self) -> None:
        """Have the loop take in what was read so far, soon (someone waits for it)."""
        taken, unseen = self.take()
        if taken:
            self._lane.pending.append(partial(self.deliver, taken, unseen))
            self._lane.wake_loop()

    def end(self, *, urgent: bool = False) -> None:
        """Give the sockets back; the loop takes in what was read later, in order (see
        :class:`DirectLane`), or soon if ``urgent``. The lane is free for another thread
        at once."""
        self._lane._end(self, urgent)
