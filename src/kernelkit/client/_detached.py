"""Requests whose reply a caller claims later (``send_request`` / ``get_reply``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernelkit.client import _requests as rq
from kernelkit.client._requests import Request
from kernelkit.client._waiters import Unclaimed, Waiter
from kernelkit.protocol import Message, TrackedRequest

if TYPE_CHECKING:
    from kernelkit.client._core import ClientCore

__all__ = ["Detached"]


class Detached:
    """The detached requests of one client core, and their replies until claimed."""

    __slots__ = ("_core", "_unclaimed")

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        self._unclaimed = Unclaimed()

    def send(
        self, request: Request, msg: Message, *, timeout: float | None
    ) -> TrackedRequest[Waiter]:
        """Start ``request``; its reply waits for :meth:`get_reply`.

        Raises:
            ClientClosed, KernelError, LocalProtocolError: see ``ClientCore.begin``.
        """
        tracked = self._core.begin(request, msg, timeout=timeout, future=False)
        self._unclaimed.add(tracked.msg_id, tracked.context)
        return tracked

    def start(self, request: Request, msg: Message, *, timeout: float | None) -> None:
        """:meth:`send` from a callback: a failure to send settles the request with its
        error (raised by :meth:`get_reply`) instead of raising here."""
        try:
            self.send(request, msg, timeout=timeout)
        except Exception as exc:
            waiter = Waiter(request, None, None, None, None, None)
            waiter.settle(None, exc)
            self._unclaimed.add(msg.header.msg_id, waiter)

    async def get_reply(self, msg_id: str, *, timeout: float | None = None) -> Message:
        """The checked reply to a request sent with ``send_request`` (waits for it).

        Raises:
            LocalProtocolError: no such request was sent, or its reply was claimed.
            KernelTimeout: no reply within ``timeout`` (the request stays pending).
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
        """
        core = self._core
        loop = core.check_loop()
        waiter = await self._unclaimed.claim(msg_id, loop, timeout, kernel=core.kernel_name)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return rq.finish(waiter.request, waiter.reply, kernel=core.kernel_name)
