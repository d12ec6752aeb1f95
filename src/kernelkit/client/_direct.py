"""A blocking request done in the calling thread, through the transport's direct lane.

The blocking face normally hands a request to its loop thread and sleeps until the loop
wakes it with the answer: two thread wake-ups per request that a plain pyzmq client
does not pay. When the transport has a direct lane (ZeroMQ) and no other thread is
using it, :func:`call_direct` instead borrows the shell and IOPub sockets, sends the
request, and waits for and reads the answer itself. The decisions are the core's: the
same :class:`~kernelkit.protocol.RequestTracker` attributes each message, and every
message read is handed to the core afterwards, in order (see
:class:`~kernelkit.transport._zmqlane.DirectLane` for when), so handlers, streams and
state see exactly what they would have seen; while a handler or stream is subscribed,
at once. The request's own outputs are the one exception: while no handler or stream
is subscribed, the core would do nothing with them, so they are not handed over (a
flood of output costs the loop thread nothing; its statuses and reply still go).

While a direct request is pending the core keeps a :class:`DirectSlot` for it: what the
loop itself receives for that request (an ``input_request`` on stdin, a status on
IOPub when that is not lent) goes there, and so does the error that ends every pending
request (kernel died, client closed, reply lost for size).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from kernelkit._errors import RemoteProtocolError
from kernelkit.client._requests import Request
from kernelkit.client._waiters import expired
from kernelkit.protocol import (
    InputRequested,
    Message,
    ReplyReceived,
    RequestTracker,
    StatusChanged,
)
from kernelkit.transport._zmqlane import BACKLOG

if TYPE_CHECKING:
    from kernelkit.client._core import ClientCore
    from kernelkit.transport._zmqlane import DirectLane, Received

__all__ = ["DirectSlot", "call_direct", "lane_of", "take_in"]

log = logging.getLogger("kernelkit.client")


class DirectSlot:
    """What the loop hands a pending direct request: its messages, or its end."""

    __slots__ = (
        "_loop",
        "_scheduled",
        "error",
        "inbox",
        "iopub",
        "msg_type",
        "nudge",
        "subshell_id",
    )

    def __init__(
        self,
        msg: Message,
        nudge: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        *,
        iopub: bool,
    ) -> None:
        self.inbox: deque[tuple[str, Message]] = deque()
        self.error: BaseException | None = None
        self.nudge = nudge
        self.iopub = iopub  # the request waits for IOPub (else its statuses are noise)
        self.msg_type = msg.header.msg_type
        self.subshell_id = msg.header.subshell_id
        self._loop = loop
        self._scheduled = False

    def put(self, channel: str, message: Message) -> None:  # the loop thread
        if channel != "iopub" or self.iopub:
            self.inbox.append((channel, message))
            if not self._scheduled:  # one wake-up per turn of the loop, not per message
                self._scheduled = True
                self._loop.call_soon(self._wake)

    def _wake(self) -> None:  # the loop thread
        self._scheduled = False
        self.nudge()

    def fail(self, error: BaseException) -> None:  # the loop thread
        if self.error is None:
            self.error = error
            self.nudge()


def lane_of(core: ClientCore) -> DirectLane | None:
    """The core's transport's direct lane, if it has one now."""
    lane_fn: Callable[[], DirectLane | None] | None = getattr(core.transport, "direct_lane", None)
    return lane_fn() if lane_fn is not None else None


def call_direct(
    core: ClientCore,
    lane: DirectLane,
    request: Request,
    msg: Message,
    timeout: float | None,
    *,
    outputs: list[Message] | None = None,
    show: Callable[[Message], None] | None = None,
    answer: Callable[[Message], None] | None = None,
) -> Message | None:
    """Send ``msg`` (built from the shell ``request``) and wait here for its reply (and,
    with ``wait_idle``, its idle status). ``show`` gets its IOPub messages, ``outputs``
    collects the non-status ones, ``answer`` gets its ``input_request``.

    Returns None, having sent nothing, when the lane cannot be used now (another thread
    has it): use the loop instead.

    Raises:
        ClientClosed, KernelError: as the loop's path would (closed, kernel dead,
            :class:`~kernelkit.KernelTimeout`, :class:`~kernelkit.MessageTooLarge`).
    """
    wait_idle = request.wait_idle
    msg_id = msg.header.msg_id
    mine = wait_idle or show is not None or outputs is not None
    slot = DirectSlot(msg, lane.nudge, core.check_loop(), iopub=mine)
    direct = core.direct
    lease = None
    urgent = False  # someone else waits for something read here
    refused = False  # a message was refused: the core sees everything after it

    def needed() -> bool:  # on the loop: someone else waits for what the sockets bring
        return core.handler_count() > 0 or core.pending_requests > len(direct)

    try:
        # IOPub too, even when only the reply counts: else the loop would wake for the
        # request's statuses, and take the CPU this thread is about to need.
        lease = lane.open(("shell", "iopub"), partial(take_in, core), needed)
        if lease is None:
            return None
        direct[msg_id] = slot
        core.check_usable()  # closed, dead, refused key: what the loop's path raises
        if not lease.send("shell", msg):
            return None
        tracker: RequestTracker[None] = RequestTracker()
        tracked = tracker.track(msg, None, channel="shell")

        def other(channel: str, item: Message) -> Message | None:
            """A reply, status or input request of ours: the final answer, or None."""
            event = tracker.receive(channel, item)
            if isinstance(event, StatusChanged):
                if show is not None:
                    lease.active = time.monotonic()
                    show(item)
                if event.complete and wait_idle:
                    return tracked.reply
            elif isinstance(event, ReplyReceived):
                if event.complete or not wait_idle:
                    return item
            elif isinstance(event, InputRequested):
                if answer is not None:
                    answer(item)
                else:
                    log.warning(
                        "kernel %s asks for input (%r) but the request has no stdin "
                        "hook; answer with client.input()",
                        core.kernel_name,
                        item.content.get("prompt", ""),
                    )
            return None

        deadline = None if timeout is None else time.monotonic() + timeout
        inbox = slot.inbox
        popleft = inbox.popleft
        while True:
            # Handlers and streams want messages as they come; requests through the loop
            # (another thread's) want theirs. IOPub is looked at here only when someone
            # waits for it; otherwise its frames go to the loop unread (verified later).
            # Our outputs are ours alone while nobody is subscribed (and no refusal
            # makes the core count messages in a row): they are not handed over.
            handlers = core.handler_count() > 0
            others = handlers or core.pending_requests > len(direct)
            urgent = urgent or others
            own = None if handlers or refused or core.bad_signatures else msg_id
            items = lease.read(mine or others, own)
            core.heard += len(items)
            for channel, item in items:
                if type(item) is not Message:
                    if isinstance(item, RemoteProtocolError):
                        urgent = refused = True  # the core counts refusals (a wrong key)
                    continue  # else: IOPub frames nobody waits for
                parent = item.parent_header
                if parent is None or parent.msg_id != msg_id:
                    urgent = urgent or channel != "iopub"  # another thread's reply
                    continue
                if channel == "iopub" and item.header.msg_type != "status":
                    if outputs is not None:  # an output: no need to ask the tracker
                        outputs.append(item)
                    if show is not None:
                        lease.active = time.monotonic()  # a long hook: a stalled borrower
                        show(item)
                    continue
                final = other(channel, item)
                if final is not None:
                    return final
            # Then what the loop received for this request (ours, verified, seen by the
            # core): once the loop reads a lent socket, this thread no longer does.
            while inbox:
                channel, item = popleft()
                if channel == "iopub" and item.header.msg_type != "status":
                    if outputs is not None:
                        outputs.append(item)
                    if show is not None:
                        show(item)
                    continue
                final = other(channel, item)
                if final is not None:
                    return final
            if slot.error is not None:
                raise slot.error
            held = lease.held()  # read here and not yet handed over
            if held and (urgent or held > BACKLOG):
                lease.hand_over()
                urgent = False
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise expired(core.kernel_name, tracked, timeout or 0.0)
            lease.wait(left)
    finally:
        direct.pop(msg_id, None)
        if lease is not None:
            lease.end(urgent=urgent or core.pending_requests > 0)


def take_in(core: ClientCore, received: list[Received], unseen: int = 0) -> None:
    """Hand the core what a direct caller read, in order (on the loop thread). The
    last ``unseen`` the caller has not looked at: those go to its slot too."""
    was = core.forwarding
    seen_up_to = len(received) - unseen
    try:
        deserialize = core.session.deserialize
        for i, (channel, item) in enumerate(received):
            core.forwarding = i < seen_up_to  # the caller's slot has seen these
            if isinstance(item, list):  # frames read but not looked at
                try:
                    item = deserialize(item)[1]
                except RemoteProtocolError as exc:
                    item = exc
            if isinstance(item, RemoteProtocolError):
                core.message_rejected(channel, item)
            else:
                core.message_received(channel, item)
    finally:
        core.forwarding = was
