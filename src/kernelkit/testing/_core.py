"""The fake kernel's decisions, sans-IO: a request in, the messages to send out.

:class:`KernelCore` owns no socket, loop, thread or clock. A driver hands it each
received message (:meth:`KernelCore.receive`, or raw frames to
:meth:`KernelCore.receive_frames`) and performs the actions it returns, in order:
:class:`Send` a message on a channel, :class:`Sleep` then call
:meth:`KernelCore.wake`, or :class:`Exit` the kernel. A signal-style interrupt is
:meth:`KernelCore.interrupt`.

Every shell (the main one and each JEP 91 subshell) runs one request at a time and
queues the rest, as ipykernel does; control requests are answered at once, also while a
shell is busy. What a client does wrong is never answered and is recorded in
:attr:`KernelCore.errors` instead.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import (
    COMM_MESSAGES,
    Message,
    Session,
    reply_type,
)
from kernelkit.testing._actions import (
    Action,
    Exit,
    KernelChannel,
    ProtocolViolation,
    Send,
    Sleep,
    ViolationKind,
)
from kernelkit.testing._code import (
    complete_reply,
    inspect_reply,
    is_complete_reply,
    parse_code,
)
from kernelkit.testing._state import (
    Execution,
    InputWait,
    Running,
    Shell,
    SleepWait,
    expected_channel,
)

__all__ = [
    "DEFAULT_FEATURES",
    "Action",
    "Exit",
    "KernelCore",
    "ProtocolViolation",
    "Send",
    "Sleep",
]

SUBSHELLS = "kernel subshells"
#: What the fake kernel advertises in ``supported_features`` unless told otherwise.
DEFAULT_FEATURES: tuple[str, ...] = (SUBSHELLS,)
_SUBSHELL_REQUESTS = frozenset(
    {"create_subshell_request", "list_subshell_request", "delete_subshell_request"}
)
_TRACEBACK_HEAD = "\x1b[0;31mTraceback (most recent call last)\x1b[0m"


class _Interrupted(Exception):
    """Thrown into a running execution that is interrupted."""


class KernelCore:
    """A strict, scripted kernel without I/O (see the package docstring for the code).

    ``session`` signs what the kernel sends (and verifies frames given to
    :meth:`receive_frames`). ``features`` go into ``supported_features``; subshell
    requests are served only when ``"kernel subshells"`` is among them and are ignored
    otherwise, as xeus-python does. ``interruptible`` False makes interrupts do nothing;
    ``ignore_shutdown`` answers ``shutdown_request`` without exiting. ``pid`` is what
    the ``pid`` command answers (default: this process's).
    """

    def __init__(
        self,
        session: Session,
        *,
        features: Iterable[str] = DEFAULT_FEATURES,
        language_info: Mapping[str, Any] | None = None,
        protocol_version: str = "5.3",
        implementation: str = "kernelkit-fake",
        welcome: bool = True,
        interruptible: bool = True,
        ignore_shutdown: bool = False,
        pid: int | None = None,
    ) -> None:
        self.session = session
        self.features: tuple[str, ...] = tuple(features)
        self.language_info: dict[str, Any] = dict(
            language_info
            if language_info is not None
            else {
                "name": "fake",
                "version": "1.0",
                "mimetype": "text/plain",
                "file_extension": ".txt",
            }
        )
        self.protocol_version = protocol_version
        self.implementation = implementation
        self.welcome_enabled = welcome
        self.interruptible = interruptible
        self.ignore_shutdown = ignore_shutdown
        self.pid = pid if pid is not None else os.getpid()
        #: Every message received, as ``(channel, message)``, in order (also wrong ones).
        self.received: list[tuple[str, Message]] = []
        #: What clients did wrong (never answered).
        self.errors: list[ProtocolViolation] = []
        #: Live subshell ids, in creation order.
        self.subshells: list[str] = []
        #: Open comms: comm_id -> target_name.
        self.comms: dict[str, str] = {}
        #: The code of every execute_request run, in order (the history).
        self.history: list[str] = []
        self.execution_count = 0
        #: The exit code once the kernel has exited (``exit`` or ``shutdown_request``).
        self.exit_code: int | None = None
        self._shells: dict[str | None, Shell] = {None: Shell()}
        self._sleeping: dict[int, str | None] = {}  # token -> shell
        self._inputs: dict[str, str | None] = {}  # input_request msg_id -> shell
        self._next_token = 0
        self._out: list[Action] = []

    # -- the driver's side ---------------------------------------------------------------

    @property
    def subshells_enabled(self) -> bool:
        return SUBSHELLS in self.features

    def welcome(self, subscription: str = "") -> list[Action]:
        """What to publish when a client subscribes to IOPub (``iopub_welcome``)."""
        if not self.welcome_enabled or self.exit_code is not None:
            return []
        msg = self.session.msg("iopub_welcome", {"subscription": subscription})
        return [Send("iopub", msg)]

    def receive(
        self, channel: str, message: Message, identities: Sequence[bytes] = ()
    ) -> list[Action]:
        """Handle one message a client sent on ``channel``; the actions to perform."""
        if self.exit_code is not None:
            return []
        self.received.append((channel, message))
        self._route(channel, message, tuple(identities))
        return self._take()

    def receive_frames(self, channel: str, frames: Sequence[bytes | memoryview]) -> list[Action]:
        """Verify and handle raw ZeroMQ frames; a bad signature is recorded, not answered."""
        if self.exit_code is not None:
            return []
        try:
            identities, message = self.session.deserialize(frames)
        except RemoteProtocolError as exc:
            self._violation("signature", channel, "", str(exc))
            return []
        return self.receive(channel, message, identities)

    def wake(self, token: int) -> list[Action]:
        """A :class:`Sleep` is over (a stale token, of an interrupted sleep, is ignored)."""
        key = self._sleeping.pop(token, None)
        shell = self._shells.get(key)
        if self.exit_code is not None or shell is None or shell.running is None:
            return []
        if shell.running.token != token:
            return []
        shell.running.token = 0
        self._step(key, None)
        self._pump(key)
        return self._take()

    def interrupt(self) -> list[Action]:
        """An interrupt (SIGINT): the main shell's ``sleep`` or ``input`` ends with
        KeyboardInterrupt. Nothing happens when idle or not ``interruptible``."""
        if self.exit_code is None and self.interruptible:
            self._interrupt_main()
        return self._take()

    # -- routing ---------------------------------------------------------------------------

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _violation(self, kind: ViolationKind, channel: str, msg_type: str, detail: str) -> None:
        self.errors.append(ProtocolViolation(kind, channel, msg_type, detail))

    def _route(self, channel: str, msg: Message, idents: tuple[bytes, ...]) -> None:
        msg_type = msg.msg_type
        expected = expected_channel(msg_type)
        if expected is None:
            self._violation(
                "unknown", channel, msg_type, f"{msg_type!r} is not a message a client sends"
            )
            return
        if channel not in expected.split(" or "):
            self._violation(
                "routing",
                channel,
                msg_type,
                f"{msg_type} arrived on {channel}; it belongs on {expected}",
            )
            return
        if channel == "stdin":
            self._input_reply(msg)
        elif channel == "control":
            self._control(msg, idents)
        else:
            self._shell_message(msg, idents)

    # -- sending -------------------------------------------------------------------------

    def _publish(self, parent: Message | None, msg_type: str, content: Mapping[str, Any]) -> None:
        self._out.append(Send("iopub", self.session.msg(msg_type, content, parent=parent)))

    def _status(self, parent: Message, state: str) -> None:
        self._publish(parent, "status", {"execution_state": state})

    def _reply(
        self,
        channel: KernelChannel,
        request: Message,
        idents: tuple[bytes, ...],
        content: Mapping[str, Any],
        *,
        idle_first: bool = False,
    ) -> None:
        """The reply to ``request``, then idle (or idle, then the reply)."""
        reply = self.session.msg(reply_type(request.msg_type), content, parent=request)
        if idle_first:
            self._status(request, "idle")
        self._out.append(Send(channel, reply, idents))
        if not idle_first:
            self._status(request, "idle")

    def _answer(
        self,
        channel: KernelChannel,
        request: Message,
        idents: tuple[bytes, ...],
        content: Mapping[str, Any],
    ) -> None:
        self._status(request, "busy")
        self._reply(channel, request, idents, content)

    def _exit(self, code: int) -> None:
        self.exit_code = code
        self._out.append(Exit(code))

    # -- control ---------------------------------------------------------------------------

    def _control(self, msg: Message, idents: tuple[bytes, ...]) -> None:
        msg_type = msg.msg_type
        if msg_type in _SUBSHELL_REQUESTS:
            if self.subshells_enabled:
                self._answer("control", msg, idents, self._subshell_request(msg))
            return  # a kernel without subshells does not know these (xeus-python)
        if msg_type == "kernel_info_request":
            self._answer("control", msg, idents, self._kernel_info())
        elif msg_type == "interrupt_request":
            self._status(msg, "busy")
            if self.interruptible:
                self._interrupt_main()
            self._reply("control", msg, idents, {"status": "ok"})
        elif msg_type == "shutdown_request":
            restart = bool(msg.content.get("restart", False))
            self._answer("control", msg, idents, {"status": "ok", "restart": restart})
            if not self.ignore_shutdown:
                self._exit(0)
        else:  # debug_request
            command = msg.content.get("command", "")
            self._answer(
                "control",
                msg,
                idents,
                {
                    "type": "response",
                    "seq": 0,
                    "request_seq": msg.content.get("seq", 0),
                    "success": False,
                    "command": command,
                    "message": "the fake kernel has no debugger",
                    "body": {},
                },
            )

    def _subshell_request(self, msg: Message) -> dict[str, Any]:
        if msg.msg_type == "create_subshell_request":
            sid = str(uuid.uuid4())
            self.subshells.append(sid)
            self._shells[sid] = Shell()
            return {"status": "ok", "subshell_id": sid}
        if msg.msg_type == "list_subshell_request":
            return {"status": "ok", "subshell_id": list(self.subshells)}
        gone = msg.content.get("subshell_id")
        if gone not in self.subshells:
            return {"status": "error", "evalue": f"Unknown subshell_id {gone}"}
        self.subshells.remove(gone)
        del self._shells[gone]  # what ran there is dropped (its sleeps wake to nothing)
        return {"status": "ok"}

    def _kernel_info(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "protocol_version": self.protocol_version,
            "implementation": self.implementation,
            "implementation_version": "1.0",
            "language_info": dict(self.language_info),
            "banner": "kernelkit's fake kernel (kernelkit.testing)",
            "help_links": [],
            "debugger": False,
            "supported_features": list(self.features),
        }

    # -- shell -----------------------------------------------------------------------------

    def _shell_message(self, msg: Message, idents: tuple[bytes, ...]) -> None:
        sid = msg.header.subshell_id
        key = sid if sid and self.subshells_enabled else None
        if key is not None and key not in self._shells:
            if msg.msg_type not in COMM_MESSAGES:
                self._answer(
                    "shell",
                    msg,
                    idents,
                    {
                        "status": "error",
                        "ename": "UnknownSubshellError",
                        "evalue": f"Unknown subshell_id {sid}",
                        "traceback": [],
                    },
                )
            return
        if msg.msg_type == "execute_request":
            code = msg.content.get("code")
            if not isinstance(code, str):
                self._violation("content", "shell", msg.msg_type, "execute_request has no code")
                return
            commands = parse_code(code)
            if commands and commands[0].word == "hold":
                self.history.append(code)  # received: a test can see it in the history
                return  # nothing at all, and the shell stays free
        shell = self._shells[key]
        shell.queue.append((msg, idents))
        self._pump(key)

    def _pump(self, key: str | None) -> None:
        """Run queued requests of one shell until one has to wait."""
        shell = self._shells.get(key)
        while shell is not None and shell.running is None and shell.queue:
            if self.exit_code is not None:
                return
            msg, idents = shell.queue.popleft()
            if msg.msg_type == "execute_request":
                shell.running = Running(self._execute(key, msg, idents), msg, idents)
                self._step(key, None)
            else:
                self._status(msg, "busy")
                if msg.msg_type in COMM_MESSAGES:
                    self._comm(msg)
                    self._status(msg, "idle")
                else:
                    self._reply("shell", msg, idents, self._shell_reply(msg))
            shell = self._shells.get(key)

    def _step(self, key: str | None, value: str | None, *, interrupt: bool = False) -> None:
        """Advance the running execution of a shell by one wait."""
        shell = self._shells[key]
        running = shell.running
        assert running is not None
        try:
            if interrupt:
                wait = running.execution.throw(_Interrupted())
            else:
                wait = running.execution.send(value)
        except StopIteration:
            shell.running = None  # the caller pumps the shell's queue
            return
        if isinstance(wait, SleepWait):
            self._next_token += 1
            running.token = self._next_token
            self._sleeping[running.token] = key
            self._out.append(Sleep(running.token, wait.seconds))
        else:
            request = running.request
            ask = self.session.msg(
                "input_request", {"prompt": wait.prompt, "password": False}, parent=request
            )
            running.input_id = ask.msg_id
            self._inputs[ask.msg_id] = key
            # The stdin socket's identity equals the shell socket's: same route.
            self._out.append(Send("stdin", ask, running.identities))

    def _interrupt_main(self) -> None:
        running = self._shells[None].running
        if running is None:
            return
        if running.token:
            self._sleeping.pop(running.token, None)
            running.token = 0
        elif running.input_id:
            self._inputs.pop(running.input_id, None)
            running.input_id = ""
        else:
            return
        self._step(None, None, interrupt=True)
        self._pump(None)

    def _input_reply(self, msg: Message) -> None:
        parent = msg.parent_id
        if parent in self._inputs:
            key = self._inputs.pop(parent)
        elif parent is None and len(self._inputs) == 1:
            key = self._inputs.pop(next(iter(self._inputs)))
        else:
            self._violation(
                "unexpected", "stdin", msg.msg_type, "input_reply to no pending input_request"
            )
            return
        shell = self._shells.get(key)
        if shell is None or shell.running is None:
            return
        shell.running.input_id = ""
        value = msg.content.get("value", "")
        self._step(key, value if isinstance(value, str) else str(value))
        self._pump(key)

    def _error(self, parent: Message, ename: str, evalue: str) -> dict[str, Any]:
        error = {
            "ename": ename,
            "evalue": evalue,
            "traceback": [_TRACEBACK_HEAD, f"{ename}: {evalue}"],
        }
        self._publish(parent, "error", error)
        return error

    def _execute(self, key: str | None, request: Message, idents: tuple[bytes, ...]) -> Execution:
        content = request.content
        code: str = content["code"]
        self.execution_count += 1
        count = self.execution_count
        self.history.append(code)
        self._status(request, "busy")
        self._publish(request, "execute_input", {"code": code, "execution_count": count})
        commands = parse_code(code)
        error: dict[str, Any] | None = None
        idle_first = False
        if commands is None:
            self._result(request, code, count)
        for command in commands or ():
            word, arg = command.word, command.arg
            if word in ("print", "err"):
                name = "stdout" if word == "print" else "stderr"
                self._publish(request, "stream", {"name": name, "text": arg + "\n"})
            elif word in ("result", "pid"):
                self._result(request, str(self.pid) if word == "pid" else arg, count)
            elif word == "display":
                self._publish(
                    request,
                    "display_data",
                    {"data": {"text/plain": arg}, "metadata": {}, "transient": {}},
                )
            elif word == "error":
                ename, _, evalue = arg.partition(" ")
                error = self._error(request, ename or "Error", evalue or "boom")
            elif word == "check":
                if self.errors:
                    detail = "; ".join(str(e) for e in self.errors)
                    error = self._error(request, "ProtocolViolation", detail)
            elif word == "idle-first":
                idle_first = True
            elif word == "exit":
                self._exit(int(arg) if arg.strip().lstrip("-").isdigit() else 0)
                return
            elif word == "sleep":
                try:
                    seconds = float(arg)
                except ValueError:
                    error = self._error(request, "ValueError", f"sleep needs seconds, not {arg!r}")
                    break
                try:
                    yield SleepWait(max(0.0, seconds))
                except _Interrupted:
                    error = self._error(request, "KeyboardInterrupt", "")
            elif word == "input":
                if not content.get("allow_stdin", True):
                    error = self._error(
                        request, "StdinNotImplementedError", "input is not allowed here"
                    )
                    break
                try:
                    value = yield InputWait(arg)
                except _Interrupted:
                    error = self._error(request, "KeyboardInterrupt", "")
                else:
                    self._publish(request, "stream", {"name": "stdout", "text": value or ""})
            if error is not None:
                break
        if error is not None:
            reply: dict[str, Any] = {"status": "error", "execution_count": count, **error}
        else:
            reply = {
                "status": "ok",
                "execution_count": count,
                "user_expressions": {},
                "payload": [],
            }
        self._reply("shell", request, idents, reply, idle_first=idle_first)
        if error is not None and content.get("stop_on_error", True):
            self._abort_queued(key)

    def _result(self, request: Message, text: str, count: int) -> None:
        self._publish(
            request,
            "execute_result",
            {"data": {"text/plain": text}, "metadata": {}, "execution_count": count},
        )

    def _abort_queued(self, key: str | None) -> None:
        """After an error, queued executes of that shell are aborted (stop_on_error)."""
        shell = self._shells.get(key)
        if shell is None:
            return
        kept: deque[tuple[Message, tuple[bytes, ...]]] = deque()
        for msg, idents in shell.queue:
            if msg.msg_type == "execute_request":
                self._answer("shell", msg, idents, {"status": "aborted"})
            else:
                kept.append((msg, idents))
        shell.queue = kept

    def _shell_reply(self, msg: Message) -> dict[str, Any]:
        content = msg.content
        msg_type = msg.msg_type
        if msg_type == "kernel_info_request":
            return self._kernel_info()
        code = content.get("code", "")
        code = code if isinstance(code, str) else ""
        cursor = content.get("cursor_pos")
        cursor = cursor if isinstance(cursor, int) and 0 <= cursor <= len(code) else len(code)
        if msg_type == "complete_request":
            return complete_reply(code, cursor)
        if msg_type == "inspect_request":
            return inspect_reply(code, cursor)
        if msg_type == "history_request":
            entries = [[0, i + 1, code] for i, code in enumerate(self.history)]
            if content.get("hist_access_type") == "tail":
                n = content.get("n")
                entries = entries[-n:] if isinstance(n, int) and n > 0 else entries
            return {"status": "ok", "history": entries}
        if msg_type == "is_complete_request":
            return is_complete_reply(code)
        # comm_info_request
        target = content.get("target_name")
        comms = {
            cid: {"target_name": name}
            for cid, name in self.comms.items()
            if target is None or name == target
        }
        return {"status": "ok", "comms": comms}

    def _comm(self, msg: Message) -> None:
        """Comms: target ``echo`` opens and echoes every comm_msg; others are closed."""
        content = msg.content
        cid = content.get("comm_id")
        if not isinstance(cid, str):
            self._violation("content", "shell", msg.msg_type, f"{msg.msg_type} has no comm_id")
            return
        if msg.msg_type == "comm_open":
            if content.get("target_name") == "echo":
                self.comms[cid] = "echo"
            else:  # an unknown target: ipykernel closes the comm
                self._publish(msg, "comm_close", {"comm_id": cid, "data": {}})
        elif msg.msg_type == "comm_msg":
            if cid in self.comms:
                self._publish(msg, "comm_msg", {"comm_id": cid, "data": content.get("data", {})})
        else:
            self.comms.pop(cid, None)
