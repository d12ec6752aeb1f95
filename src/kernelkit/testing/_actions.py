"""What the fake kernel's sans-IO core asks its driver to do, and what it refuses.

:class:`Send`, :class:`Sleep` and :class:`Exit` are the actions
:class:`~kernelkit.testing._core.KernelCore` returns; :class:`ProtocolViolation` is what
it records instead of answering a client that broke the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kernelkit.protocol import Message

__all__ = [
    "Action",
    "Exit",
    "KernelChannel",
    "ProtocolViolation",
    "Send",
    "Sleep",
    "ViolationKind",
]

KernelChannel = Literal["shell", "control", "stdin", "iopub"]
ViolationKind = Literal["routing", "unknown", "signature", "content", "unexpected"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` on ``channel`` (to ``identities`` on a ROUTER socket)."""

    channel: KernelChannel
    message: Message
    identities: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Call :meth:`KernelCore.wake` with ``token`` after ``seconds`` (a running ``sleep``)."""

    token: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Exit:
    """The kernel exits with ``code`` now; nothing more is answered."""

    code: int


Action = Send | Sleep | Exit


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """Something a client did that the protocol does not allow; it was not answered.

    ``kind``: ``routing`` (a request on the wrong channel), ``unknown`` (a message type
    no client sends), ``signature`` (bad HMAC, replay, malformed frames), ``content``
    (a request missing what it must carry), ``unexpected`` (an ``input_reply`` nobody
    asked for).
    """

    kind: ViolationKind
    channel: str
    msg_type: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} error on {self.channel}: {self.detail}"
