"""Message types of the Jupyter messaging protocol, by channel.

From "Messaging in Jupyter" (protocol 5.5) plus the kernel subshell messages of JEP 91
and ipykernel's ``iopub_welcome``. Kernels may send types not listed here (extensions,
custom comms targets use ``comm_*``); nothing here rejects them, these sets only say
what the spec names.
"""

from __future__ import annotations

from typing import Literal

from kernelkit._errors import LocalProtocolError

__all__ = [
    "CHANNEL_NAMES",
    "COMM_MESSAGES",
    "CONTROL_REQUESTS",
    "IOPUB_MESSAGES",
    "SHELL_REQUESTS",
    "STDIN_MESSAGES",
    "Channel",
    "is_reply",
    "is_request",
    "reply_type",
    "request_channel",
    "request_type",
]

#: The channels a Jupyter message travels on (the heartbeat carries no messages).
Channel = Literal["shell", "control", "iopub", "stdin"]
CHANNEL_NAMES: tuple[Channel, ...] = ("shell", "control", "iopub", "stdin")

#: Requests a client sends on the shell channel; each is answered by ``<name>_reply``.
SHELL_REQUESTS = frozenset(
    {
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "comm_info_request",
        "kernel_info_request",
    }
)

#: Comm messages: sent on shell by a client, on iopub by a kernel; never answered.
COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})

#: Requests a client sends on the control channel; each is answered by ``<name>_reply``.
CONTROL_REQUESTS = frozenset(
    {
        "shutdown_request",
        "interrupt_request",
        "kernel_info_request",
        "debug_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)

#: Messages a kernel broadcasts on iopub.
IOPUB_MESSAGES = frozenset(
    {
        "status",
        "stream",
        "display_data",
        "update_display_data",
        "execute_input",
        "execute_result",
        "error",
        "clear_output",
        "debug_event",
        "iopub_welcome",
        # ipykernel also broadcasts its shutdown_reply on iopub.
        "shutdown_reply",
        *COMM_MESSAGES,
    }
)

#: The stdin exchange: the kernel asks (``input_request``), the client answers.
STDIN_MESSAGES = frozenset({"input_request", "input_reply"})

_REQUEST = "_request"
_REPLY = "_reply"


def is_request(msg_type: str) -> bool:
    """True for a ``*_request`` type (a message that expects a ``*_reply``)."""
    return len(msg_type) > len(_REQUEST) and msg_type.endswith(_REQUEST)


def is_reply(msg_type: str) -> bool:
    """True for a ``*_reply`` type."""
    return len(msg_type) > len(_REPLY) and msg_type.endswith(_REPLY)


def reply_type(request_type: str) -> str:
    """The reply type that answers a request: ``execute_request`` -> ``execute_reply``.

    Works for any ``*_request`` (custom ones too), as the spec names replies this way.

    Raises:
        LocalProtocolError: ``request_type`` does not end in ``_request``.
    """
    if not is_request(request_type):
        raise LocalProtocolError(
            f"{request_type!r} is not a request type (requests end in '_request', "
            "e.g. 'execute_request')"
        )
    return request_type[: -len(_REQUEST)] + _REPLY


def request_type(reply: str) -> str:
    """The request a reply answers: ``execute_reply`` -> ``execute_request``.

    ``input_reply`` gives ``input_request`` (the one exchange the kernel starts).

    Raises:
        LocalProtocolError: ``reply`` does not end in ``_reply``.
    """
    if not is_reply(reply):
        raise LocalProtocolError(
            f"{reply!r} is not a reply type (replies end in '_reply', e.g. 'execute_reply')"
        )
    return reply[: -len(_REPLY)] + _REQUEST


def request_channel(msg_type: str) -> Literal["shell", "control", "stdin"]:
    """The channel a client sends a message on.

    ``kernel_info_request`` is allowed on shell and control; shell is where clients send
    it. ``input_reply`` goes on stdin. Types the spec does not name go on shell, as
    custom requests do.

    Raises:
        LocalProtocolError: ``msg_type`` is a kernel-to-client message (iopub or
            ``input_request``), which a client never sends.
    """
    if msg_type in CONTROL_REQUESTS and msg_type not in SHELL_REQUESTS:
        return "control"
    if msg_type in SHELL_REQUESTS or msg_type in COMM_MESSAGES:
        return "shell"
    if msg_type == "input_reply":
        return "stdin"
    if msg_type in IOPUB_MESSAGES or msg_type == "input_request":
        raise LocalProtocolError(
            f"{msg_type!r} is sent by kernels, not clients (iopub or stdin message)"
        )
    return "shell"
