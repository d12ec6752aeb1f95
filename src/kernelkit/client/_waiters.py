"""What a request waits for: its :class:`Waiter`, and the replies kept for ``get_reply``."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from kernelkit._errors import KernelTimeout, LocalProtocolError
from kernelkit.client._requests import Request
from kernelkit.protocol import Message, TrackedRequest

__all__ = ["UNCLAIMED_LIMIT", "OnDone", "Unclaimed", "Waiter", "expired"]

#: Replies of requests sent with ``send_request`` kept until ``get_reply`` claims them;
#: past this many, the oldest are dropped.
UNCLAIMED_LIMIT = 4096

#: Called when a request is done: (reply, None) or (None, error). On the loop thread.
OnDone = Callable[["Message | None", "BaseException | None"], None]


def expired(kernel: str, tracked: TrackedRequest[Any], timeout: float) -> KernelTimeout:
    """The error of a request that waited ``timeout`` seconds in vain."""
    what = (
        f"idle status for {tracked.msg_type} (the reply arrived)"
        if tracked.reply is not None
        else f"reply to {tracked.msg_type}"
    )
    where = f" on subshell {tracked.subshell_id}" if tracked.subshell_id else ""
    return KernelTimeout(f"kernel {kernel}: no {what}{where} within {timeout} s")


class Waiter:
    """What one in-flight request waits for (kept as its tracker context)."""

    __slots__ = (
        "error",
        "future",
        "hook",
        "on_done",
        "on_input",
        "outputs",
        "reply",
        "request",
        "settled",
        "timer",
    )

    def __init__(
        self,
        request: Request,
        future: asyncio.Future[Message] | None,
        on_done: OnDone | None,
        outputs: list[Message] | None,
        hook: Callable[[Message], None] | None,
        on_input: Callable[[Message], None] | None,
    ) -> None:
        self.request = request
        self.future = future
        self.on_done = on_done
        self.outputs = outputs
        self.hook = hook
        self.on_input = on_input
        self.timer: asyncio.TimerHandle | None = None
        self.settled = False
        self.reply: Message | None = None
        self.error: BaseException | None = None

    def settle(self, reply: Message | None, error: BaseException | None) -> None:
        if self.settled:
            return
        self.settled = True
        self.reply = reply
        self.error = error
        future = self.future
        if future is not None and not future.done():
            if error is None:
                future.set_result(reply)  # type: ignore[arg-type]
            else:
                future.set_exception(error)
        on_done = self.on_done
        if on_done is not None:
            on_done(reply, error)


class Unclaimed:
    """The waiters of requests whose reply a caller claims later (``get_reply``)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: OrderedDict[str, Waiter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._waiters)

    def add(self, msg_id: str, waiter: Waiter) -> None:
        waiters = self._waiters
        waiters[msg_id] = waiter
        while len(waiters) > UNCLAIMED_LIMIT:
            waiters.popitem(last=False)

    async def claim(
        self, msg_id: str, loop: asyncio.AbstractEventLoop, timeout: float | None, *, kernel: str
    ) -> Waiter:
        """The settled waiter of ``msg_id`` (waits for it), no longer kept.

        Raises:
            LocalProtocolError: no such request, or its reply was claimed already.
            KernelTimeout: not settled within ``timeout`` (it stays claimable).
        """
        waiter = self._waiters.get(msg_id)
        if waiter is None:
            raise LocalProtocolError(
                f"no request {msg_id!r} sent with send_request awaits its reply on this "
                "client (never sent here, or its reply was claimed already)"
            )
        if not waiter.settled:
            if waiter.future is None:
                waiter.future = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            except asyncio.TimeoutError:
                raise KernelTimeout(
                    f"kernel {kernel}: no reply to {waiter.request.msg_type} {msg_id} "
                    f"within {timeout} s (still pending)"
                ) from None
            except BaseException:
                if not waiter.settled:
                    raise
        self._waiters.pop(msg_id, None)
        return waiter
