"""KernelCore, sans-IO: a request in, the actions out (no sockets, no loop, no clock).

Most cases are a table: ``(channel, msg_type, content)`` in, the ``(channel, msg_type)``
of every Send out, and the reply content expected (a subset).
"""

from __future__ import annotations

from typing import Any

import pytest

from kernelkit.protocol import Message, Session
from kernelkit.testing import COMMANDS, Exit, KernelCore, Send, Sleep

KEY = b"secret"


def _client() -> Session:
    return Session(KEY, username="client")


def _core(**kw: Any) -> KernelCore:
    return KernelCore(Session(KEY, username="kernel"), pid=4242, **kw)


def _request(msg_type: str, content: dict[str, Any] | None = None, **kw: Any) -> Message:
    return _client().msg(msg_type, content or {}, **kw)


def _shape(actions: list[Any]) -> list[tuple[str, str]]:
    out = []
    for a in actions:
        if isinstance(a, Send):
            msg = a.message
            name = msg.msg_type
            if name == "status":
                name = f"status:{msg.content['execution_state']}"
            out.append((a.channel, name))
        elif isinstance(a, Sleep):
            out.append(("sleep", str(a.seconds)))
        else:
            out.append(("exit", str(a.code)))
    return out


def _sent(actions: list[Any], msg_type: str) -> list[Message]:
    return [a.message for a in actions if isinstance(a, Send) and a.message.msg_type == msg_type]


def _reply(actions: list[Any]) -> Message:
    (reply,) = [
        a.message
        for a in actions
        if isinstance(a, Send) and a.channel in ("shell", "control") and a.message
    ]
    return reply


BUSY = ("iopub", "status:busy")
IDLE = ("iopub", "status:idle")


def _execute_shape(*outputs: str, reply: str = "shell") -> list[tuple[str, str]]:
    return [
        BUSY,
        ("iopub", "execute_input"),
        *(("iopub", o) for o in outputs),
        (reply, "execute_reply"),
        IDLE,
    ]


# -- requests answered, in ipykernel's order ------------------------------------------------

ANSWERED: list[tuple[str, str, dict[str, Any], list[tuple[str, str]], dict[str, Any]]] = [
    (
        "shell",
        "kernel_info_request",
        {},
        [BUSY, ("shell", "kernel_info_reply"), IDLE],
        {"status": "ok", "protocol_version": "5.3", "supported_features": ["kernel subshells"]},
    ),
    (
        "control",
        "kernel_info_request",
        {},
        [BUSY, ("control", "kernel_info_reply"), IDLE],
        {"status": "ok", "implementation": "kernelkit-fake"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "print hello"},
        _execute_shape("stream"),
        {"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []},
    ),
    (
        "shell",
        "execute_request",
        {"code": "print a; err b\nresult c; display d; pid"},
        _execute_shape("stream", "stream", "execute_result", "display_data", "execute_result"),
        {"status": "ok"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "6*7"},
        _execute_shape("execute_result"),
        {"status": "ok"},
    ),
    ("shell", "execute_request", {"code": ""}, _execute_shape(), {"status": "ok"}),
    (
        "shell",
        "execute_request",
        {"code": "print a; error KeyError nope; print never"},
        _execute_shape("stream", "error"),
        {"status": "error", "ename": "KeyError", "evalue": "nope"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "error ValueError"},
        _execute_shape("error"),
        {"ename": "ValueError", "evalue": "boom"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "idle-first"},
        [BUSY, ("iopub", "execute_input"), IDLE, ("shell", "execute_reply")],
        {"status": "ok"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "input name?", "allow_stdin": False},
        _execute_shape("error"),
        {"ename": "StdinNotImplementedError"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "sleep soon"},
        _execute_shape("error"),
        {"ename": "ValueError"},
    ),
    (
        "shell",
        "execute_request",
        {"code": "check"},
        _execute_shape(),
        {"status": "ok"},
    ),
    (
        "shell",
        "complete_request",
        {"code": "print x; e", "cursor_pos": 10},
        [BUSY, ("shell", "complete_reply"), IDLE],
        {"matches": ["err", "error", "exit"], "cursor_start": 9, "cursor_end": 10},
    ),
    (
        "shell",
        "inspect_request",
        {"code": "sleep 3", "cursor_pos": 2, "detail_level": 0},
        [BUSY, ("shell", "inspect_reply"), IDLE],
        {"found": True, "data": {"text/plain": COMMANDS["sleep"]}},
    ),
    (
        "shell",
        "inspect_request",
        {"code": "nothing", "cursor_pos": 2},
        [BUSY, ("shell", "inspect_reply"), IDLE],
        {"found": False, "data": {}},
    ),
    (
        "shell",
        "history_request",
        {"hist_access_type": "tail", "n": 10, "output": False, "raw": True},
        [BUSY, ("shell", "history_reply"), IDLE],
        {"status": "ok", "history": []},
    ),
    (
        "shell",
        "is_complete_request",
        {"code": "print a \\"},
        [BUSY, ("shell", "is_complete_reply"), IDLE],
        {"status": "incomplete", "indent": ""},
    ),
    (
        "shell",
        "is_complete_request",
        {"code": "print a"},
        [BUSY, ("shell", "is_complete_reply"), IDLE],
        {"status": "complete"},
    ),
    (
        "shell",
        "comm_info_request",
        {},
        [BUSY, ("shell", "comm_info_reply"), IDLE],
        {"status": "ok", "comms": {}},
    ),
    (
        "control",
        "interrupt_request",
        {},
        [BUSY, ("control", "interrupt_reply"), IDLE],
        {"status": "ok"},
    ),
    (
        "control",
        "shutdown_request",
        {"restart": True},
        [BUSY, ("control", "shutdown_reply"), IDLE, ("exit", "0")],
        {"status": "ok", "restart": True},
    ),
    (
        "control",
        "debug_request",
        {"seq": 3, "command": "initialize", "type": "request"},
        [BUSY, ("control", "debug_reply"), IDLE],
        {"success": False, "request_seq": 3, "command": "initialize"},
    ),
    (
        "control",
        "create_subshell_request",
        {},
        [BUSY, ("control", "create_subshell_reply"), IDLE],
        {"status": "ok"},
    ),
    (
        "control",
        "list_subshell_request",
        {},
        [BUSY, ("control", "list_subshell_reply"), IDLE],
        {"status": "ok", "subshell_id": []},
    ),
    (
        "control",
        "delete_subshell_request",
        {"subshell_id": "nope"},
        [BUSY, ("control", "delete_subshell_reply"), IDLE],
        {"status": "error", "evalue": "Unknown subshell_id nope"},
    ),
]


@pytest.mark.parametrize(
    ("channel", "msg_type", "content", "shape", "reply"),
    ANSWERED,
    ids=[f"{c[1]}-{c[2].get('code', c[0])}" for c in ANSWERED],
)
def test_request_is_answered_in_order(
    channel: str,
    msg_type: str,
    content: dict[str, Any],
    shape: list[tuple[str, str]],
    reply: dict[str, Any],
) -> None:
    core = _core()
    request = _request(msg_type, content)
    actions = core.receive(channel, request)
    assert _shape(actions) == shape
    answer = _reply(actions)
    assert answer.parent_id == request.msg_id
    assert {k: answer.content.get(k) for k in reply} == reply
    for action in actions:  # every message the kernel sends answers the request
        if isinstance(action, Send):
            assert action.message.parent_id == request.msg_id
    assert core.errors == []


# -- what a client does wrong: never answered, recorded -------------------------------------

WRONG: list[tuple[str, str, str]] = [
    ("control", "execute_request", "routing"),
    ("control", "complete_request", "routing"),
    ("shell", "shutdown_request", "routing"),
    ("shell", "interrupt_request", "routing"),
    ("shell", "create_subshell_request", "routing"),
    ("shell", "debug_request", "routing"),
    ("stdin", "execute_request", "routing"),
    ("shell", "input_reply", "routing"),
    ("control", "comm_open", "routing"),
    ("shell", "status", "unknown"),
    ("shell", "execute_reply", "unknown"),
    ("shell", "made_up_request", "unknown"),
    ("stdin", "input_reply", "unexpected"),
]


@pytest.mark.parametrize(("channel", "msg_type", "kind"), WRONG)
def test_wrong_messages_are_recorded_not_answered(channel: str, msg_type: str, kind: str) -> None:
    core = _core()
    content = {"code": "print x", "comm_id": "c", "target_name": "echo", "value": "v"}
    assert core.receive(channel, _request(msg_type, content)) == []
    (error,) = core.errors
    assert (error.kind, error.channel, error.msg_type) == (kind, channel, msg_type)
    assert channel in str(error)
    # `check` reports them in band.
    actions = core.receive("shell", _request("execute_request", {"code": "check"}))
    reply = _reply(actions)
    assert reply.content["ename"] == "ProtocolViolation"
    assert msg_type in reply.content["evalue"]


def test_routing_error_names_the_right_channel() -> None:
    core = _core()
    core.receive("control", _request("execute_request", {"code": "1"}))
    assert str(core.errors[0]) == (
        "routing error on control: execute_request arrived on control; it belongs on shell"
    )


def test_bad_signature_and_replay_are_recorded() -> None:
    core = _core()
    forged = Session(b"other key").serialize(_request("kernel_info_request"))
    assert core.receive_frames("shell", forged) == []
    assert core.errors[-1].kind == "signature"
    frames = _client().serialize(_request("kernel_info_request"))
    assert _shape(core.receive_frames("shell", frames))[1] == ("shell", "kernel_info_reply")
    assert core.receive_frames("shell", frames) == []  # the same signature again: a replay
    assert [e.kind for e in core.errors] == ["signature", "signature"]


def test_identities_route_replies_and_input_requests() -> None:
    core = _core()
    ids = (b"client-1",)
    actions = core.receive("shell", _request("execute_request", {"code": "input ?"}), ids)
    (ask,) = [a for a in actions if isinstance(a, Send) and a.channel == "stdin"]
    assert ask.identities == ids
    answer = _client().msg("input_reply", {"value": "v"}, parent=ask.message)
    actions = core.receive("stdin", answer, ids)
    reply = [a for a in actions if isinstance(a, Send) and a.channel == "shell"]
    assert reply[0].identities == ids


# -- waiting: sleep, input, interrupt ---------------------------------------------------------


def test_sleep_waits_for_wake_and_queues_the_shell() -> None:
    core = _core()
    first = _request("execute_request", {"code": "print a; sleep 2.5; print b"})
    actions = core.receive("shell", first)
    assert _shape(actions) == [
        BUSY,
        ("iopub", "execute_input"),
        ("iopub", "stream"),
        ("sleep", "2.5"),
    ]
    (sleep,) = [a for a in actions if isinstance(a, Sleep)]
    # The shell is busy: the next request waits; control answers at once.
    assert core.receive("shell", _request("kernel_info_request")) == []
    assert _shape(core.receive("control", _request("kernel_info_request")))[1] == (
        "control",
        "kernel_info_reply",
    )
    actions = core.wake(sleep.token)
    assert _shape(actions) == [
        ("iopub", "stream"),
        ("shell", "execute_reply"),
        IDLE,
        BUSY,
        ("shell", "kernel_info_reply"),
        IDLE,
    ]
    assert core.wake(sleep.token) == []  # twice: nothing


@pytest.mark.parametrize("how", ["signal", "message"])
def test_interrupt_ends_a_sleep_with_keyboard_interrupt(how: str) -> None:
    core = _core()
    actions = core.receive("shell", _request("execute_request", {"code": "sleep 30; print x"}))
    (sleep,) = [a for a in actions if isinstance(a, Sleep)]
    if how == "signal":
        actions = core.interrupt()
    else:
        actions = core.receive("control", _request("interrupt_request"))
    reply = _sent(actions, "execute_reply")[0]
    assert reply.content["ename"] == "KeyboardInterrupt"
    assert _sent(actions, "error")[0].content["ename"] == "KeyboardInterrupt"
    assert _sent(actions, "stream") == []
    assert core.wake(sleep.token) == []  # the timer firing later changes nothing
    assert core.interrupt() == []  # idle: nothing to interrupt


def test_no_interrupt() -> None:
    core = _core(interruptible=False)
    core.receive("shell", _request("execute_request", {"code": "sleep 30"}))
    assert core.interrupt() == []
    actions = core.receive("control", _request("interrupt_request"))
    assert _shape(actions) == [BUSY, ("control", "interrupt_reply"), IDLE]


def test_input_round_trip_and_interrupt() -> None:
    core = _core()
    request = _request("execute_request", {"code": "input name? ; print after"})
    actions = core.receive("shell", request)
    (ask,) = _sent(actions, "input_request")
    assert ask.content == {"prompt": "name? ", "password": False}
    assert ask.parent_id == request.msg_id
    actions = core.receive("stdin", _client().msg("input_reply", {"value": "bob"}, parent=ask))
    streams = [m.content["text"] for m in _sent(actions, "stream")]
    assert streams == ["bob", "after\n"]
    assert _sent(actions, "execute_reply")[0].content["status"] == "ok"
    core.receive("shell", _request("execute_request", {"code": "input again"}))
    actions = core.interrupt()
    assert _sent(actions, "execute_reply")[0].content["ename"] == "KeyboardInterrupt"


def test_error_aborts_queued_executes() -> None:
    core = _core()
    actions = core.receive("shell", _request("execute_request", {"code": "sleep 1; error E"}))
    (sleep,) = [a for a in actions if isinstance(a, Sleep)]
    queued = _request("execute_request", {"code": "print never"})
    kept = _request("execute_request", {"code": "print kept", "stop_on_error": False})
    core.receive("shell", queued)
    core.receive("shell", _request("is_complete_request", {"code": ""}))
    actions = core.wake(sleep.token)
    replies = _sent(actions, "execute_reply")
    assert [r.content["status"] for r in replies] == ["error", "aborted"]
    assert replies[1].parent_id == queued.msg_id
    assert _sent(actions, "is_complete_reply")  # other requests still run
    assert _sent(actions, "stream") == []
    actions = core.receive("shell", kept)
    assert _sent(actions, "execute_reply")[0].content["status"] == "ok"


def test_hold_answers_nothing_and_keeps_the_shell_free() -> None:
    core = _core()
    assert core.receive("shell", _request("execute_request", {"code": "hold"})) == []
    assert core.execution_count == 0
    actions = core.receive("shell", _request("execute_request", {"code": "1"}))
    assert _sent(actions, "execute_reply")[0].content["execution_count"] == 1


def test_exit_stops_everything() -> None:
    core = _core()
    actions = core.receive("shell", _request("execute_request", {"code": "print x; exit 5"}))
    assert _shape(actions)[-1] == ("exit", "5")
    assert _sent(actions, "execute_reply") == []
    assert core.exit_code == 5
    assert core.receive("shell", _request("kernel_info_request")) == []
    assert core.welcome() == []


def test_ignore_shutdown() -> None:
    core = _core(ignore_shutdown=True)
    actions = core.receive("control", _request("shutdown_request", {"restart": False}))
    assert not [a for a in actions if isinstance(a, Exit)]
    assert core.exit_code is None


def test_execution_count_history_and_pid() -> None:
    core = _core()
    for code in ("print a", "pid", "6*7"):
        actions = core.receive("shell", _request("execute_request", {"code": code}))
    assert core.execution_count == 3
    actions = core.receive("shell", _request("execute_request", {"code": "pid"}))
    assert _sent(actions, "execute_result")[0].content["data"] == {"text/plain": "4242"}
    actions = core.receive(
        "shell", _request("history_request", {"hist_access_type": "tail", "n": 2})
    )
    assert _reply(actions).content["history"] == [[0, 3, "6*7"], [0, 4, "pid"]]


def test_welcome() -> None:
    (welcome,) = _core().welcome("topic")
    assert isinstance(welcome, Send)
    assert welcome.channel == "iopub"
    assert welcome.message.content == {"subscription": "topic"}
    assert _core(welcome=False).welcome() == []


def test_kernel_info_settings() -> None:
    core = _core(features=(), language_info={"name": "x"}, protocol_version="5.5")
    reply = _reply(core.receive("shell", _request("kernel_info_request")))
    assert reply.content["supported_features"] == []
    assert reply.content["language_info"] == {"name": "x"}
    assert reply.content["protocol_version"] == "5.5"


# -- subshells (JEP 91) -----------------------------------------------------------------------


def test_subshells_run_beside_a_busy_main_shell() -> None:
    core = _core()
    sid = _reply(core.receive("control", _request("create_subshell_request"))).content[
        "subshell_id"
    ]
    listed = _reply(core.receive("control", _request("list_subshell_request")))
    assert listed.content["subshell_id"] == [sid]
    core.receive("shell", _request("execute_request", {"code": "sleep 3"}))
    sub = _request("execute_request", {"code": "result 2"}, subshell_id=sid)
    actions = core.receive("shell", sub)
    assert _shape(actions) == _execute_shape("execute_result")
    assert _reply(actions).parent_header is not None
    assert _reply(actions).parent_header.subshell_id == sid
    # The execution counter is shared.
    assert _reply(actions).content["execution_count"] == 2
    deleted = core.receive("control", _request("delete_subshell_request", {"subshell_id": sid}))
    assert _reply(deleted).content == {"status": "ok"}
    gone = core.receive("shell", _request("execute_request", {"code": "1"}, subshell_id=sid))
    assert _reply(gone).content["ename"] == "UnknownSubshellError"
    assert core.errors == []


def test_without_the_feature_subshell_requests_are_ignored() -> None:
    core = _core(features=())
    assert core.receive("control", _request("create_subshell_request")) == []
    assert core.errors == []  # a client may probe: not a violation
    # Code aimed at a subshell runs on the main shell (xeus-python).
    actions = core.receive("shell", _request("execute_request", {"code": "1"}, subshell_id="x"))
    assert _reply(actions).content["status"] == "ok"


# -- comms ----------------------------------------------------------------------------------


def test_echo_comm() -> None:
    core = _core()
    opened = core.receive(
        "shell", _request("comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}})
    )
    assert _shape(opened) == [BUSY, IDLE]
    info = _reply(core.receive("shell", _request("comm_info_request", {"target_name": "echo"})))
    assert info.content["comms"] == {"c1": {"target_name": "echo"}}
    echoed = core.receive("shell", _request("comm_msg", {"comm_id": "c1", "data": {"x": 1}}))
    assert _sent(echoed, "comm_msg")[0].content == {"comm_id": "c1", "data": {"x": 1}}
    core.receive("shell", _request("comm_close", {"comm_id": "c1", "data": {}}))
    assert core.comms == {}
    closed = core.receive(
        "shell", _request("comm_open", {"comm_id": "c2", "target_name": "other", "data": {}})
    )
    assert _sent(closed, "comm_close")[0].content["comm_id"] == "c2"
    assert core.errors == []
