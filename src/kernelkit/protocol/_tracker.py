"""Which reply, output and status belongs to which request and subshell (sans-IO).

A :class:`RequestTracker` is told about every request a client sends and every message
it receives, and answers with one event per received message:

- :class:`ReplyReceived`: the shell/control reply to a tracked request;
- :class:`OutputReceived`: an IOPub message (other than ``status``) whose parent is a
  tracked request, such as ``stream``, ``display_data``, ``execute_input`` or ``error``;
- :class:`StatusChanged`: an IOPub ``status`` whose parent is a tracked request;
- :class:`InputRequested`: a stdin ``input_request`` whose parent is a tracked request;
- :class:`Unmatched`: anything else (no parent, a parent we never sent or have already
  finished with, a second reply). Reported, never dropped.

Busy and idle are tracked per request (a subshell goes idle while the main shell is
busy). IOPub and shell are not ordered relative to each other, so a request is
*complete* only once both its reply and its ``idle`` status have arrived, in either
order; the event that completes it says so (``complete=True``) and the tracker then
forgets it.

Every tracked request carries an opaque ``context`` chosen by the caller (a client keeps
its waiter there), so routing an event costs no second lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from kernelkit._errors import LocalProtocolError
from kernelkit.protocol._message import Message

__all__ = [
    "InputRequested",
    "OutputReceived",
    "ReplyReceived",
    "RequestTracker",
    "StatusChanged",
    "TrackedRequest",
    "TrackerEvent",
    "Unmatched",
]

C = TypeVar("C")

_REPLY_CHANNELS = frozenset(("shell", "control"))


class TrackedRequest(Generic[C]):
    """A request in flight: what was sent, and what has come back so far.

    Attributes:
        msg_id: the request's ``header.msg_id``.
        msg_type: e.g. ``execute_request``.
        channel: ``shell`` or ``control``.
        subshell_id: the request's ``header.subshell_id``; None is the main shell.
        context: the caller's own object, returned with every event for this request.
        reply: the reply, once it has arrived.
        execution_state: the last ``status`` seen for this request (``None`` before any).
    """

    __slots__ = (
        "channel",
        "context",
        "execution_state",
        "msg_id",
        "msg_type",
        "reply",
        "subshell_id",
    )

    def __init__(
        self,
        msg_id: str,
        msg_type: str,
        *,
        channel: str,
        subshell_id: str | None,
        context: C,
    ) -> None:
        self.msg_id = msg_id
        self.msg_type = msg_type
        self.channel = channel
        self.subshell_id = subshell_id
        self.context = context
        self.reply: Message | None = None
        self.execution_state: str | None = None

    @property
    def idle(self) -> bool:
        """True once the kernel reported ``idle`` for this request."""
        return self.execution_state == "idle"

    @property
    def complete(self) -> bool:
        """True once both the reply and the ``idle`` status have arrived."""
        return self.reply is not None and self.execution_state == "idle"

    def __repr__(self) -> str:
        return (
            f"<TrackedRequest {self.msg_type} {self.msg_id} channel={self.channel}"
            f" subshell={self.subshell_id} state={self.execution_state}"
            f" replied={self.reply is not None}>"
        )


@dataclass(frozen=True, slots=True)
class ReplyReceived(Generic[C]):
    """The reply to a tracked request arrived on ``channel``."""

    request: TrackedRequest[C]
    message: Message
    channel: str
    complete: bool


@dataclass(frozen=True, slots=True)
class OutputReceived(Generic[C]):
    """An IOPub message, other than ``status``, produced by a tracked request."""

    request: TrackedRequest[C]
    message: Message


@dataclass(frozen=True, slots=True)
class StatusChanged(Generic[C]):
    """An IOPub ``status`` for a tracked request (``busy``, ``idle``, ...)."""

    request: TrackedRequest[C]
    message: Message
    execution_state: str
    complete: bool


@dataclass(frozen=True, slots=True)
class InputRequested(Generic[C]):
    """The kernel asks for input (stdin ``input_request``) on behalf of a tracked request."""

    request: TrackedRequest[C]
    message: Message


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A message that belongs to no tracked request.

    ``parent_id`` is None when the message has no parent at all (e.g. the ``starting``
    status or ``iopub_welcome``); otherwise the parent is a request this tracker never
    saw (another client's, on the shared IOPub) or has already finished with (a late
    output, a second reply). ``subshell_id`` is the parent's, when it names one.
    """

    channel: str
    message: Message
    parent_id: str | None
    subshell_id: str | None


#: What :meth:`RequestTracker.receive` returns.
TrackerEvent: TypeAlias = (
    ReplyReceived[C] | OutputReceived[C] | StatusChanged[C] | InputRequested[C] | Unmatched
)


class RequestTracker(Generic[C]):
    """Attributes received messages to the requests they answer.

    Pure bookkeeping: no I/O, no clock. ``track`` before sending a request, ``receive``
    every message that arrives, ``forget`` a request you no longer wait for.
    """

    __slots__ = ("_requests", "kernel_execution_state")

    def __init__(self) -> None:
        self._requests: dict[str, TrackedRequest[C]] = {}
        #: The ``execution_state`` of the last ``status`` message seen, from any request
        #: (or from none, e.g. ``starting``); None before the first.
        self.kernel_execution_state: str | None = None

    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._requests

    def __iter__(self) -> Iterator[TrackedRequest[C]]:
        return iter(list(self._requests.values()))

    def get(self, msg_id: str) -> TrackedRequest[C] | None:
        """The tracked request with that msg_id, if it is still in flight."""
        return self._requests.get(msg_id)

    def track(self, request: Message, context: C, *, channel: str = "shell") -> TrackedRequest[C]:
        """Start tracking ``request``, about to be sent on ``channel``.

        Raises:
            LocalProtocolError: ``channel`` cannot carry a request, or a request with the
                same msg_id is already tracked.
        """
        if channel not in _REPLY_CHANNELS:
            raise LocalProtocolError(
                f"requests go on the shell or control channel, not {channel!r}"
            )
        header = request.header
        if header.msg_id in self._requests:
            raise LocalProtocolError(f"request {header.msg_id} is already being tracked")
        tracked = TrackedRequest(
            header.msg_id,
            header.msg_type,
            channel=channel,
            subshell_id=header.subshell_id,
            context=context,
        )
        self._requests[header.msg_id] = tracked
        return tracked

    def forget(self, msg_id: str) -> TrackedRequest[C] | None:
        """Stop tracking a request; later messages for it become :class:`Unmatched`."""
        return self._requests.pop(msg_id, None)

    def forget_all(self) -> list[TrackedRequest[C]]:
        """Stop tracking every request (the kernel is gone); returns them."""
        requests = list(self._requests.values())
        self._requests.clear()
        return requests

    def forget_subshell(self, subshell_id: str) -> list[TrackedRequest[C]]:
        """Stop tracking every request sent to that subshell (it was deleted); returns them."""
        gone = [r for r in self._requests.values() if r.subshell_id == subshell_id]
        for request in gone:
            del self._requests[request.msg_id]
        return gone

    def is_busy(self, subshell_id: str | None = None) -> bool:
        """True while a tracked request on that subshell (None: main shell) is busy."""
        return any(
            r.execution_state == "busy" and r.subshell_id == subshell_id
            for r in self._requests.values()
        )

    def receive(self, channel: str, message: Message) -> TrackerEvent[C]:
        """Attribute one received message; returns exactly one event."""
        parent = message.parent_header
        if parent is None:
            if channel == "iopub" and message.header.msg_type == "status":
                self._note_kernel_state(message)
            return Unmatched(channel, message, None, None)
        request = self._requests.get(parent.msg_id)
        if request is None:
            if channel == "iopub" and message.header.msg_type == "status":
                self._note_kernel_state(message)
            return Unmatched(channel, message, parent.msg_id, parent.subshell_id)

        if channel == "iopub":
            if message.header.msg_type != "status":
                return OutputReceived(request, message)
            state = self._note_kernel_state(message)
            request.execution_state = state
            complete = state == "idle" and request.reply is not None
            if complete:
                del self._requests[request.msg_id]
            return StatusChanged(request, message, state, complete)

        if channel in _REPLY_CHANNELS:
            if request.reply is not None:  # a second reply: report it, keep the first
                return Unmatched(channel, message, parent.msg_id, parent.subshell_id)
            request.reply = message
            complete = request.execution_state == "idle"
            if complete:
                del self._requests[request.msg_id]
            return ReplyReceived(request, message, channel, complete)

        if channel == "stdin" and message.header.msg_type == "input_request":
            return InputRequested(request, message)
        return Unmatched(channel, message, parent.msg_id, parent.subshell_id)

    def _note_kernel_state(self, message: Message) -> str:
        state = message.content.get("execution_state")
        if not isinstance(state, str):
            state = "unknown"
        self.kernel_execution_state = state
        return state
