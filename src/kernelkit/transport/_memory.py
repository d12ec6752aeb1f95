"""An in-memory transport: the test plays the kernel, no sockets, no processes.

For testing code that uses a client::

    transport = MemoryTransport()
    async with AsyncKernelClient(transport) as client:
        task = asyncio.create_task(client.execute("1 + 1"))
        channel, request = await transport.receive()      # what the client sent
        transport.reply(request, "execute_reply", {"status": "ok", "execution_count": 1})
        reply = await task

Messages are framed and verified by real :class:`Session` objects on both sides (so what
cannot go on the wire fails here too), and delivered on the next turn of the event loop,
as a real transport would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import (
    ClientClosed,
    KernelError,
    KernelTimeout,
    LocalProtocolError,
    RemoteProtocolError,
)
from kernelkit.protocol import Message, Session
from kernelkit.transport._base import Receiver

__all__ = ["MemoryTransport"]

_SEND_CHANNELS = frozenset(("shell", "control", "stdin"))
_KERNEL_CHANNELS = frozenset(("shell", "control", "stdin", "iopub"))


class MemoryTransport:
    """A transport whose other end is the test itself.

    ``alive`` is what the heartbeat sees: while False, :meth:`ping` waits its whole
    timeout and fails, as it would against a hung kernel.
    """

    __slots__ = (
        "_closed",
        "_connected",
        "_heartbeat",
        "_inbox",
        "_kernel_session",
        "_loop",
        "_receiver",
        "_session",
        "alive",
        "reconnected",
        "sent_count",
    )

    def __init__(
        self,
        session: Session | None = None,
        *,
        key: bytes = b"",
        heartbeat: bool = True,
    ) -> None:
        self._session = session if session is not None else Session(key)
        self._kernel_session = Session(
            self._session.key, signature_scheme=self._session.signature_scheme
        )
        self._heartbeat = heartbeat
        self._receiver: Receiver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[tuple[str, Message]] | None = None
        self._closed = False
        self._connected = asyncio.Event()  # set by connect() and by close()
        self.alive = True
        #: How many messages the client has sent.
        self.sent_count = 0
        #: The connection infos :meth:`reconnect` was given, in order.
        self.reconnected: list[ConnectionInfo] = []

    # -- the client's side (the Transport protocol) --------------------------------------

    @property
    def session(self) -> Session:
        return self._session

    @property
    def supports_heartbeat(self) -> bool:
        return self._heartbeat

    @property
    def heartbeat_url(self) -> str:
        return "memory://heartbeat" if self._heartbeat else ""

    @property
    def closed(self) -> bool:
        return self._closed

    async def connect(self, receiver: Receiver) -> None:
        if self._closed:
            raise ClientClosed("this MemoryTransport is closed")
        if self._receiver is not None:
            raise ClientClosed("this MemoryTransport is already connected")
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._receiver = receiver
        self._connected.set()

    def send(self, channel: str, message: Message) -> None:
        if channel not in _SEND_CHANNELS:
            raise LocalProtocolError(
                f"cannot send on channel {channel!r}: use shell, control or stdin"
            )
        if self._closed or self._inbox is None:
            raise ClientClosed(
                "this MemoryTransport is closed" if self._closed else "not connected"
            )
        _, wire = self._kernel_session.deserialize(self._session.serialize(message))
        self.sent_count += 1
        self._inbox.put_nowait((channel, wire))

    async def ping(self, timeout: float) -> bool:
        if self._closed:
            raise ClientClosed("this MemoryTransport is closed")
        if self.alive:
            return True
        await asyncio.sleep(timeout)  # a hung kernel: the echo never comes
        return False

    def reconnect(self, info: ConnectionInfo) -> None:
        """Nothing to move (the test is the kernel): ``info`` is recorded in
        :attr:`reconnected`."""
        if self._closed:
            raise ClientClosed("this MemoryTransport is closed")
        self.reconnected.append(info)

    def close(self) -> None:
        self._closed = True
        self._connected.set()  # wake a kernel still waiting for its client

    async def aclose(self) -> None:
        self.close()

    # -- the kernel's side (the test) ----------------------------------------------------

    @property
    def kernel_session(self) -> Session:
        """The session the fake kernel signs with (same key, its own id)."""
        return self._kernel_session

    async def wait_connected(self) -> bool:
        """Wait until a client has connected; False if the transport closed first."""
        await self._connected.wait()
        return self._receiver is not None and not self._closed

    def pending(self) -> int:
        """How many sent messages wait in :meth:`receive`'s queue."""
        return self._inbox.qsize() if self._inbox is not None else 0

    async def receive(self, timeout: float | None = 5.0) -> tuple[str, Message]:
        """The next message the client sent, as ``(channel, message)``.

        Raises:
            ClientClosed: not connected yet.
            KernelTimeout: nothing was sent within ``timeout`` seconds.
        """
        if self._inbox is None:
            raise ClientClosed("this MemoryTransport is not connected")
        try:
            return await asyncio.wait_for(self._inbox.get(), timeout)
        except asyncio.TimeoutError:
            raise KernelTimeout(f"the client sent nothing within {timeout} s") from None

    def deliver(self, channel: str, message: Message) -> None:
        """Hand ``message`` to the client on ``channel``, on the next loop turn.

        It is signed by the kernel session and verified by the client's, so a message
        that could not travel over a real wire fails here.
        """
        if channel not in _KERNEL_CHANNELS:
            raise LocalProtocolError(
                f"a kernel sends on shell, control, stdin or iopub, not {channel!r}"
            )
        if self._receiver is None or self._loop is None:
            raise ClientClosed("this MemoryTransport is not connected")
        frames = self._kernel_session.serialize(message)
        self._loop.call_soon(self._deliver_frames, channel, frames)

    def _deliver_frames(self, channel: str, frames: list[bytes | memoryview]) -> None:
        receiver = self._receiver
        if self._closed or receiver is None:
            return
        try:
            _, message = self._session.deserialize(frames)
        except RemoteProtocolError as exc:
            receiver.message_rejected(channel, exc)
            return
        receiver.message_received(channel, message)

    def deliver_frames(self, channel: str, frames: list[bytes | memoryview]) -> None:
        """Hand raw frames to the client (to test what it does with a bad message)."""
        if self._loop is None:
            raise ClientClosed("this MemoryTransport is not connected")
        self._loop.call_soon(self._deliver_frames, channel, list(frames))

    def message(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        parent: Message | None = None,
    ) -> Message:
        """A message from the fake kernel, answering ``parent``."""
        return self._kernel_session.msg(msg_type, content, parent=parent)

    def reply(
        self,
        request: Message,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        channel: str = "shell",
    ) -> Message:
        """Send the reply to ``request`` on ``channel``; returns it."""
        msg = self.message(msg_type, content, parent=request)
        self.deliver(channel, msg)
        return msg

    def publish(
        self, request: Message | None, msg_type: str, content: Mapping[str, Any] | None = None
    ) -> Message:
        """Publish an IOPub message whose parent is ``request``; returns it."""
        msg = self.message(msg_type, content, parent=request)
        self.deliver("iopub", msg)
        return msg

    def lose(self, error: KernelError) -> None:
        """Make the transport fail, as a broken connection would."""
        receiver = self._receiver
        self._closed = True
        if receiver is not None:
            receiver.transport_lost(error)
