"""The transport interface: what a client needs from whatever carries its messages.

A transport moves whole :class:`~kernelkit.protocol.Message` objects per channel. It owns
the wire format (ZeroMQ frames, WebSocket frames) and the :class:`Session` that signs and
verifies them; the client above it never sees bytes or sockets.

Receiving is push, not pull: the transport calls its :class:`Receiver` for every message,
on the event loop, as soon as it has been read and verified. One reader per socket, no
task per message.
"""

from __future__ import annotations

from typing import Protocol

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelError, RemoteProtocolError
from kernelkit.protocol import Message, Session

__all__ = [
    "Receiver",
    "Transport",
]


class Receiver(Protocol):
    """What a transport reports to (a client implements this). Called on the event loop."""

    def message_received(self, channel: str, message: Message) -> None:
        """A verified message arrived on ``channel`` (shell, control, iopub or stdin)."""

    def message_rejected(self, channel: str, error: RemoteProtocolError) -> None:
        """Frames arrived on ``channel`` that failed verification or parsing (dropped)."""

    def transport_lost(self, error: KernelError) -> None:
        """The transport can no longer carry messages (its connection is gone for good)."""


class Transport(Protocol):
    """Moves messages between one client and one kernel, per channel.

    Lifecycle: ``await connect(receiver)`` once, on the event loop that will use it; then
    ``send``, ``ping`` and ``reconnect`` from that loop; ``close``/``aclose`` once at the
    end.
    """

    @property
    def session(self) -> Session:
        """Signs outgoing and verifies incoming messages; its id names this client."""
        ...

    @property
    def supports_heartbeat(self) -> bool:
        """True when :meth:`ping` reaches the kernel itself (ZeroMQ's hb channel)."""
        ...

    @property
    def heartbeat_url(self) -> str:
        """Where :meth:`ping` goes, for messages (empty without a heartbeat)."""
        ...

    @property
    def closed(self) -> bool:
        """True once closed."""
        ...

    async def connect(self, receiver: Receiver) -> None:
        """Open the channels and start delivering received messages to ``receiver``.

        Raises:
            ClientClosed: the transport is already closed.
            KernelError: the channels could not be opened.
        """
        ...

    def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel`` (shell, control or stdin). Never blocks.

        Raises:
            ClientClosed: the transport is closed or not connected.
            LocalProtocolError: the channel is unknown, or the message cannot be framed.
        """
        ...

    async def ping(self, timeout: float) -> bool:
        """One heartbeat round trip: True if the kernel echoed within ``timeout`` seconds."""
        ...

    def reconnect(self, info: ConnectionInfo) -> None:
        """Follow the kernel to ``info``'s endpoints (a restart on new ports), keeping the
        receiver; nothing happens when they are the ones in use. Called on the event loop.

        Raises:
            ClientClosed: the transport is closed.
            KernelError: it cannot reach the kernel ``info`` describes (another key, or a
                transport that is not addressed by connection info).
        """
        ...

    def close(self) -> None:
        """Close every channel now; queued outgoing messages get a short linger."""
        ...

    async def aclose(self) -> None:
        """Close every channel (the async spelling of :meth:`close`)."""
        ...
