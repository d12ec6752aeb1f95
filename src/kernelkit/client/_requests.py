"""Every request a client sends, described once: channel, type, content, reply checks.

Both faces (asyncio and blocking), and subshell views of either, build a
:class:`Request` with the functions here and send it through the one client core
(:mod:`kernelkit.client._core`); what comes back is checked by :func:`finish`. Plain
values and functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernelkit._errors import ExecutionError, LocalProtocolError, RemoteProtocolError, RequestError
from kernelkit.protocol import Message, request_channel

__all__ = [
    "SUBSHELLS_FEATURE",
    "Request",
    "comm_info",
    "comm_message",
    "complete",
    "create_subshell",
    "custom",
    "delete_subshell",
    "execute",
    "finish",
    "history",
    "input_reply",
    "inspect",
    "interrupt",
    "is_complete",
    "kernel_info",
    "list_subshells",
    "shutdown",
    "subshell_id_of",
    "subshell_ids_of",
]

#: The ``supported_features`` entry of kernels that implement JEP 91 subshells.
SUBSHELLS_FEATURE = "kernel subshells"

_CHANNELS = frozenset(("shell", "control", "stdin"))


@dataclass(frozen=True, slots=True)
class Request:
    """One message a client sends, and what it waits for.

    Attributes:
        channel: ``shell``, ``control`` or ``stdin``.
        msg_type: e.g. ``execute_request``.
        content: the message content.
        replies: False for messages no reply answers (comms, ``input_reply``).
        wait_idle: the call returns once the reply *and* the request's idle status have
            arrived (so every output is in).
        needs: a ``supported_features`` entry the kernel must list, checked before
            anything is sent.
        check_status: a reply whose status is not ok raises :class:`RequestError`.
        raise_on_error: an ``execute_reply`` with status error raises
            :class:`ExecutionError`.
        forgets_subshell: once the reply is ok, requests still pending on this subshell
            fail (the kernel deleted it and never answers them).
    """

    channel: str
    msg_type: str
    content: Mapping[str, Any]
    metadata: Mapping[str, Any] | None = None
    buffers: tuple[bytes | memoryview, ...] = ()
    parent: Message | None = None
    replies: bool = True
    wait_idle: bool = False
    needs: str | None = None
    check_status: bool = False
    raise_on_error: bool = False
    forgets_subshell: str | None = None


# -- shell --------------------------------------------------------------------------------


def execute(
    code: str,
    *,
    silent: bool,
    store_history: bool,
    user_expressions: Mapping[str, str] | None,
    allow_stdin: bool,
    stop_on_error: bool,
    wait_idle: bool,
    raise_on_error: bool = False,
) -> Request:
    """An ``execute_request``.

    Raises:
        TypeError: ``code`` is not a string.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    content = {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": dict(user_expressions) if user_expressions else {},
        "allow_stdin": allow_stdin,
        "stop_on_error": stop_on_error,
    }
    return Request(
        "shell", "execute_request", content, wait_idle=wait_idle, raise_on_error=raise_on_error
    )


_KERNEL_INFO = Request("shell", "kernel_info_request", {})


def kernel_info() -> Request:
    """A ``kernel_info_request`` (on shell, where clients ask it)."""
    return _KERNEL_INFO


def complete(code: str, cursor_pos: int | None) -> Request:
    """A ``complete_request`` (cursor at the end by default)."""
    pos = len(code) if cursor_pos is None else cursor_pos
    return Request("shell", "complete_request", {"code": code, "cursor_pos": pos})


def inspect(code: str, cursor_pos: int | None, detail_level: int) -> Request:
    """An ``inspect_request`` (cursor at the end by default)."""
    content = {
        "code": code,
        "cursor_pos": len(code) if cursor_pos is None else cursor_pos,
        "detail_level": detail_level,
    }
    return Request("shell", "inspect_request", content)


def history(
    *,
    raw: bool,
    output: bool,
    hist_access_type: str,
    session: int | None,
    start: int | None,
    stop: int | None,
    n: int | None,
    pattern: str | None,
    unique: bool,
) -> Request:
    """A ``history_request`` (only the fields its access type uses)."""
    content: dict[str, Any] = {
        "raw": raw,
        "output": output,
        "hist_access_type": hist_access_type,
    }
    if hist_access_type == "range":
        content.update(session=session or 0, start=start or 0, stop=stop)
    elif hist_access_type == "tail":
        content.update(n=n if n is not None else 10)
    elif hist_access_type == "search":
        content.update(pattern=pattern or "*", unique=unique)
        if n is not None:
            content["n"] = n
    return Request("shell", "history_request", content)


def is_complete(code: str) -> Request:
    """An ``is_complete_request``."""
    return Request("shell", "is_complete_request", {"code": code})


def comm_info(target_name: str | None) -> Request:
    """A ``comm_info_request`` (optionally for one target)."""
    content = {} if target_name is None else {"target_name": target_name}
    return Request("shell", "comm_info_request", content)


def comm_message(
    msg_type: str,
    content: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None,
    buffers: tuple[bytes | memoryview, ...],
) -> Request:
    """A ``comm_open``, ``comm_msg`` or ``comm_close`` (no reply)."""
    return Request("shell", msg_type, content, metadata=metadata, buffers=buffers, replies=False)


# -- stdin --------------------------------------------------------------------------------


def input_reply(value: str, parent: Message | None) -> Request:
    """The ``input_reply`` answering ``parent`` (an ``input_request``)."""
    return Request("stdin", "input_reply", {"value": value}, parent=parent, replies=False)


# -- control ------------------------------------------------------------------------------


def shutdown(restart: bool) -> Request:
    """A ``shutdown_request`` on control."""
    return Request("control", "shutdown_request", {"restart": restart})


def interrupt() -> Request:
    """An ``interrupt_request`` on control."""
    return Request("control", "interrupt_request", {})


def create_subshell() -> Request:
    """A ``create_subshell_request`` (JEP 91: control)."""
    return Request(
        "control",
        "create_subshell_request",
        {},
        needs=SUBSHELLS_FEATURE,
        check_status=True,
    )


def list_subshells() -> Request:
    """A ``list_subshell_request`` (JEP 91: control)."""
    return Request(
        "control", "list_subshell_request", {}, needs=SUBSHELLS_FEATURE, check_status=True
    )


def delete_subshell(subshell_id: str) -> Request:
    """A ``delete_subshell_request`` (JEP 91: control)."""
    return Request(
        "control",
        "delete_subshell_request",
        {"subshell_id": subshell_id},
        needs=SUBSHELLS_FEATURE,
        check_status=True,
        forgets_subshell=subshell_id,
    )


# -- any request --------------------------------------------------------------------------


def custom(
    msg_type: str,
    content: Mapping[str, Any] | None,
    *,
    channel: str | None,
    metadata: Mapping[str, Any] | None,
    buffers: tuple[bytes | memoryview, ...],
    wait_idle: bool,
) -> Request:
    """Any request a caller names (``send_request``); the channel defaults to the one
    the protocol gives ``msg_type``.

    Raises:
        LocalProtocolError: ``msg_type`` is not a ``*_request`` a client sends, or
            ``channel`` is not shell or control.
    """
    if not isinstance(msg_type, str) or not msg_type.endswith("_request"):
        raise LocalProtocolError(
            f"send_request sends requests ('..._request', answered by '..._reply'), not "
            f"{msg_type!r}; use comm_open/comm_msg or input() for the others"
        )
    chosen = request_channel(msg_type) if channel is None else channel
    if chosen not in ("shell", "control"):
        raise LocalProtocolError(f"requests go on the shell or control channel, not {chosen!r}")
    return Request(
        chosen,
        msg_type,
        dict(content) if content is not None else {},
        metadata=metadata,
        buffers=buffers,
        wait_idle=wait_idle,
    )


# -- replies ------------------------------------------------------------------------------


def finish(request: Request, reply: Message, *, kernel: str) -> Message:
    """Apply ``request``'s reply checks; return ``reply``.

    Raises:
        RequestError: the request checks its status and the kernel answered with an
            error (the message names the request, the kernel and the kernel's reason).
        ExecutionError: an execute request with ``raise_on_error`` whose code raised.
    """
    if request.raise_on_error:
        content = reply.content
        if content.get("status") == "error":
            raise ExecutionError(
                str(content.get("ename", "Error")),
                str(content.get("evalue", "")),
                [str(line) for line in content.get("traceback", ())],
            )
    elif request.check_status:
        content = reply.content
        if content.get("status", "ok") != "ok":
            what = request.msg_type
            if request.forgets_subshell is not None:
                what = f"{what}({request.forgets_subshell})"
            reason = content.get("evalue") or content.get("ename") or content.get("status")
            raise RequestError(
                f"kernel {kernel}: {what} failed: {reason}",
                ename=str(content.get("ename", "")),
                evalue=str(content.get("evalue", "")),
            )
    return reply


def subshell_id_of(reply: Message, *, kernel: str) -> str:
    """The new subshell's id in a ``create_subshell_reply``.

    Raises:
        RemoteProtocolError: the reply has none.
    """
    subshell_id = reply.content.get("subshell_id")
    if not isinstance(subshell_id, str) or not subshell_id:
        raise RemoteProtocolError(f"kernel {kernel}: create_subshell_reply has no subshell_id")
    return subshell_id


def subshell_ids_of(reply: Message) -> list[str]:
    """The ids in a ``list_subshell_reply``."""
    return [str(i) for i in reply.content.get("subshell_id") or []]


def check_channel(channel: str) -> None:
    """Raises LocalProtocolError for a channel a client cannot send on."""
    if channel not in _CHANNELS:
        raise LocalProtocolError(f"a client sends on shell, control or stdin, not {channel!r}")
