"""The nanny's control protocol, sans-IO: message types, actions and events.

A nanny (``kernelkit.nanny``) answers control requests on a ZeroMQ ROUTER socket.
Requests are ``nanny_request`` messages, signed with the kernel's key, whose content names
an ``action`` (:data:`NANNY_ACTIONS`); each is answered by one ``nanny_reply`` with
``status`` "ok" or "error" (with ``message``). Subscribers (``subscribe``) also get events,
unasked: ``kernel_died`` (``exit_status``, ``output_tail``, ``expected``, ``restarting``: a
restart follows) the moment the kernel exits, and ``kernel_restarted`` (``connection``,
without the key) after a restart.

It lives here, below the client, because a client that has a kernel's connection file
subscribes to its nanny (to fail its requests the moment the kernel dies) as well as the
nanny's own control API does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelkit._errors import KernelDied

__all__ = [
    "NANNY_ACTIONS",
    "NANNY_DIED",
    "NANNY_REPLY",
    "NANNY_REQUEST",
    "NANNY_RESTARTED",
    "died_error",
    "exit_status_of",
    "is_final_death",
]

NANNY_REQUEST = "nanny_request"
NANNY_REPLY = "nanny_reply"
NANNY_DIED = "kernel_died"
NANNY_RESTARTED = "kernel_restarted"

#: What a control request may ask.
NANNY_ACTIONS = frozenset(
    {
        "status",  # state, pid, exit status, detached, owner
        "interrupt",  # SIGINT to the kernel's process group
        "signal",  # {signum}
        "terminate",
        "kill",
        "shutdown_requested",  # pin the kernel's descendants before it exits by itself
        "restart",  # {grace}: stop and start again on the same ports where free
        "stop",  # {grace}: stop the kernel and everything it started; the nanny exits
        "output",  # {lines}: the last lines the kernel wrote
        "subscribe",  # events from now on
        "detach",  # the kernel outlives its owner
        "attach",  # {owner_pid?, detached?}: a new owner (re-attach)
    }
)


def is_final_death(kind: str, content: Mapping[str, Any]) -> bool:
    """True for a ``kernel_died`` event that no restart follows (a restart asked by
    another client is not a death: ``kernel_restarted`` follows)."""
    return kind == NANNY_DIED and not content.get("restarting")


def exit_status_of(content: Mapping[str, Any]) -> int | None:
    """The exit status in a ``kernel_died`` event or a status reply (None if unknown)."""
    status = content.get("exit_status")
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def died_error(content: Mapping[str, Any], *, kernel_name: str | None = None) -> KernelDied:
    """The error a ``kernel_died`` event (or a status saying "dead") means for requests."""
    return KernelDied(
        "the kernel process exited (told by its nanny)",
        kernel_name=kernel_name or None,
        exit_code=exit_status_of(content),
        output_tail=[str(x) for x in content.get("output_tail") or ()],
    )
