"""RequestTracker: messages in, events out, no sockets.

Each scenario is a table of steps. ``("send", channel, name, msg_type, subshell)`` tracks a
request under a short name; ``("recv", channel, parent, msg_type, content)`` feeds a message
whose parent is the named request (``None``: no parent, ``"?"``: a request never sent)
and states the event expected, as ``(event class name, request name or None, complete)``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kernelkit import LocalProtocolError
from kernelkit.protocol import (
    Header,
    InputRequested,
    Message,
    OutputReceived,
    ReplyReceived,
    RequestTracker,
    StatusChanged,
    Unmatched,
)

SESSION = "client-session"


def _request(msg_type: str, subshell: str | None = None) -> Message:
    return Message.build(msg_type, {}, session=SESSION, subshell_id=subshell)


def _from_kernel(msg_type: str, parent: Header | None, content: dict[str, Any]) -> Message:
    return Message.build(msg_type, content, session="kernel-session", parent=parent)


def _stranger() -> Header:
    return _request("execute_request").header


Step = tuple[Any, ...]

BUSY = {"execution_state": "busy"}
IDLE = {"execution_state": "idle"}
STREAM = {"name": "stdout", "text": "hi\n"}

SCENARIOS: dict[str, list[Step]] = {
    "reply then idle": [
        ("send", "shell", "a", "execute_request", None),
        ("recv", "iopub", "a", "status", BUSY, ("StatusChanged", "a", False)),
        ("recv", "iopub", "a", "execute_input", {}, ("OutputReceived", "a", False)),
        ("recv", "iopub", "a", "stream", STREAM, ("OutputReceived", "a", False)),
        ("recv", "shell", "a", "execute_reply", {"status": "ok"}, ("ReplyReceived", "a", False)),
        ("recv", "iopub", "a", "status", IDLE, ("StatusChanged", "a", True)),
        # After completion the request is forgotten: a late output is reported, not lost.
        ("recv", "iopub", "a", "stream", STREAM, ("Unmatched", None, False)),
    ],
    "idle then reply (iopub overtakes shell)": [
        ("send", "shell", "a", "execute_request", None),
        ("recv", "iopub", "a", "status", BUSY, ("StatusChanged", "a", False)),
        ("recv", "iopub", "a", "status", IDLE, ("StatusChanged", "a", False)),
        ("recv", "shell", "a", "execute_reply", {"status": "ok"}, ("ReplyReceived", "a", True)),
    ],
    "two requests interleaved": [
        ("send", "shell", "a", "execute_request", None),
        ("send", "shell", "b", "complete_request", None),
        ("recv", "iopub", "a", "status", BUSY, ("StatusChanged", "a", False)),
        ("recv", "iopub", "b", "status", BUSY, ("StatusChanged", "b", False)),
        ("recv", "iopub", "b", "stream", STREAM, ("OutputReceived", "b", False)),
        ("recv", "shell", "b", "complete_reply", {}, ("ReplyReceived", "b", False)),
        ("recv", "iopub", "a", "stream", STREAM, ("OutputReceived", "a", False)),
        ("recv", "iopub", "b", "status", IDLE, ("StatusChanged", "b", True)),
        ("recv", "shell", "a", "execute_reply", {}, ("ReplyReceived", "a", False)),
        ("recv", "iopub", "a", "status", IDLE, ("StatusChanged", "a", True)),
    ],
    "subshell idle while main shell busy": [
        ("send", "shell", "main", "execute_request", None),
        ("send", "shell", "sub", "execute_request", "s1"),
        ("recv", "iopub", "main", "status", BUSY, ("StatusChanged", "main", False)),
        ("recv", "iopub", "sub", "status", BUSY, ("StatusChanged", "sub", False)),
        ("recv", "shell", "sub", "execute_reply", {}, ("ReplyReceived", "sub", False)),
        ("recv", "iopub", "sub", "status", IDLE, ("StatusChanged", "sub", True)),
        ("recv", "shell", "main", "execute_reply", {}, ("ReplyReceived", "main", False)),
        ("recv", "iopub", "main", "status", IDLE, ("StatusChanged", "main", True)),
    ],
    "control request": [
        ("send", "control", "c", "interrupt_request", None),
        ("recv", "iopub", "c", "status", BUSY, ("StatusChanged", "c", False)),
        ("recv", "control", "c", "interrupt_reply", {}, ("ReplyReceived", "c", False)),
        ("recv", "iopub", "c", "status", IDLE, ("StatusChanged", "c", True)),
    ],
    "stdin input_request": [
        ("send", "shell", "a", "execute_request", None),
        ("recv", "stdin", "a", "input_request", {"prompt": "?"}, ("InputRequested", "a", False)),
        ("recv", "stdin", "?", "input_request", {"prompt": "?"}, ("Unmatched", None, False)),
    ],
    "unknown and missing parents": [
        ("recv", "iopub", None, "status", {"execution_state": "starting"}, ("Unmatched",)),
        ("recv", "iopub", None, "iopub_welcome", {}, ("Unmatched",)),
        ("recv", "iopub", "?", "stream", STREAM, ("Unmatched",)),
        ("recv", "shell", "?", "execute_reply", {}, ("Unmatched",)),
    ],
    "second reply is reported, first kept": [
        ("send", "shell", "a", "kernel_info_request", None),
        ("recv", "shell", "a", "kernel_info_reply", {"n": 1}, ("ReplyReceived", "a", False)),
        ("recv", "shell", "a", "kernel_info_reply", {"n": 2}, ("Unmatched",)),
    ],
    "non-input message on stdin": [
        ("send", "shell", "a", "execute_request", None),
        ("recv", "stdin", "a", "something_else", {}, ("Unmatched",)),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_scenario(steps: list[Step]) -> None:
    tracker: RequestTracker[str] = RequestTracker()
    sent: dict[str, Message] = {}
    for step in steps:
        if step[0] == "send":
            _, channel, name, msg_type, subshell = step
            sent[name] = msg = _request(msg_type, subshell)
            tracked = tracker.track(msg, name, channel=channel)
            assert tracked.subshell_id == subshell
            continue
        _, channel, parent_name, msg_type, content, expected = step
        parent = (
            None
            if parent_name is None
            else _stranger()
            if parent_name == "?"
            else sent[parent_name].header
        )
        msg = _from_kernel(msg_type, parent, content)
        event = tracker.receive(channel, msg)
        assert type(event).__name__ == expected[0], step
        assert event.message is msg
        if isinstance(event, Unmatched):
            assert event.channel == channel
            assert event.parent_id == (parent.msg_id if parent else None)
            continue
        assert event.request.context == expected[1]
        assert event.request.subshell_id == sent[expected[1]].header.subshell_id
        if isinstance(event, ReplyReceived | StatusChanged):
            assert event.complete is expected[2], step
            assert (event.request.msg_id in tracker) is not event.complete
        else:
            assert isinstance(event, OutputReceived | InputRequested)


def test_status_is_per_request_and_per_subshell() -> None:
    tracker: RequestTracker[None] = RequestTracker()
    main = _request("execute_request")
    sub = _request("execute_request", "s1")
    tracker.track(main, None)
    tracker.track(sub, None)
    tracker.receive("iopub", _from_kernel("status", main.header, BUSY))
    tracker.receive("iopub", _from_kernel("status", sub.header, BUSY))
    assert tracker.is_busy()
    assert tracker.is_busy("s1")
    tracker.receive("iopub", _from_kernel("status", sub.header, IDLE))
    assert tracker.is_busy()
    assert not tracker.is_busy("s1")
    assert tracker.kernel_execution_state == "idle"
    tracker.receive("iopub", _from_kernel("status", None, {"execution_state": "starting"}))
    assert tracker.kernel_execution_state == "starting"
    assert tracker.is_busy()


def test_unmatched_carries_parent_subshell() -> None:
    tracker: RequestTracker[None] = RequestTracker()
    foreign = _request("execute_request", "s9")
    event = tracker.receive("iopub", _from_kernel("stream", foreign.header, STREAM))
    assert isinstance(event, Unmatched)
    assert event.subshell_id == "s9"
    assert event.parent_id == foreign.header.msg_id


def test_status_without_state_is_unknown() -> None:
    tracker: RequestTracker[None] = RequestTracker()
    req = _request("execute_request")
    tracker.track(req, None)
    event = tracker.receive("iopub", _from_kernel("status", req.header, {}))
    assert isinstance(event, StatusChanged)
    assert event.execution_state == "unknown"


def test_forget_and_forget_all() -> None:
    tracker: RequestTracker[int] = RequestTracker()
    a, b = _request("execute_request"), _request("execute_request")
    tracker.track(a, 1)
    tracker.track(b, 2)
    assert len(tracker) == 2
    assert [r.context for r in tracker] == [1, 2]
    forgotten = tracker.forget(a.header.msg_id)
    assert forgotten is not None
    assert forgotten.context == 1
    assert tracker.forget(a.header.msg_id) is None
    assert tracker.get(b.header.msg_id) is not None
    event = tracker.receive("shell", _from_kernel("execute_reply", a.header, {}))
    assert isinstance(event, Unmatched)
    assert [r.context for r in tracker.forget_all()] == [2]
    assert len(tracker) == 0


def test_track_rejects_bad_channel_and_duplicates() -> None:
    tracker: RequestTracker[None] = RequestTracker()
    req = _request("execute_request")
    with pytest.raises(LocalProtocolError, match="shell or control"):
        tracker.track(req, None, channel="iopub")
    tracker.track(req, None)
    with pytest.raises(LocalProtocolError, match="already being tracked"):
        tracker.track(req, None)


def test_request_repr_and_flags() -> None:
    tracker: RequestTracker[None] = RequestTracker()
    req = _request("execute_request", "s1")
    tracked = tracker.track(req, None)
    assert not tracked.idle
    assert not tracked.complete
    assert "execute_request" in repr(tracked)
    assert "s1" in repr(tracked)
    tracker.receive("iopub", _from_kernel("status", req.header, IDLE))
    assert tracked.idle
    assert not tracked.complete
    tracker.receive("shell", _from_kernel("execute_reply", req.header, {}))
    assert tracked.complete


def test_forget_subshell() -> None:
    tracker: RequestTracker[str] = RequestTracker()
    for name, sub in (("a", "s1"), ("b", None), ("c", "s1"), ("d", "s2")):
        tracker.track(_request("execute_request", sub), name)
    assert [r.context for r in tracker.forget_subshell("s1")] == ["a", "c"]
    assert [r.context for r in tracker] == ["b", "d"]
    assert tracker.forget_subshell("s1") == []
